// Test bindings of the ResNet visual extractor (exports.testing.resnet; not public API): a ResNet
// built from widths, blocks and the block kind in the input's dtype, run once (training mode: batch
// statistics, as in training; or eval mode), returned with every parameter and buffer by name so a
// test can recompute it in float64 and compare the names with torchvision's.
#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/resnet.h"

namespace radkit {
namespace {

// forward(x [N, C, H, W], { widths, blocks, block: 'basic' | 'bottleneck', seed, train, weights? }) ->
//   { output, outChannels, tensors: { name: tensor } }
Napi::Value ResNetForward(const Napi::CallbackInfo& info) {
  const char* fn = "testing.resnet.forward";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& x = tensorArg(info, 0, fn, "x");
    Napi::Object o = optionsArg(info, 1, fn);
    const std::vector<int64_t> widths = shapeArg(o.Get("widths"), fn, "widths"), blocks = shapeArg(o.Get("blocks"), fn, "blocks");
    const std::string block = o.Get("block").IsString() ? o.Get("block").As<Napi::String>().Utf8Value() : "basic";
    if (block != "basic" && block != "bottleneck") argError("ERR_INVALID_ARG", fn, ": block must be 'basic' or 'bottleneck'");
    if (widths.size() != 5 || blocks.size() != 4 || x.dim() != 4) argError("ERR_INVALID_ARG", fn, ": widths holds 5, blocks 4, x is [N, C, H, W]");
    at::manual_seed(static_cast<uint64_t>(intArg(o.Get("seed"), fn, "seed", 0, int64_t{1} << 53)));
    nn::ResNet m(widths, blocks, x.size(1), block == "bottleneck" ? nn::ResNetBlock::kBottleneck : nn::ResNetBlock::kBasic);
    m->to(x.scalar_type());
    m->train(boolArg(o.Get("train"), fn, "train", true));
    // Optional weights by name (e.g. batch-norm affine terms away from their 1 / 0 start).
    if (o.Has("weights") && o.Get("weights").IsObject()) {
      Napi::Object w = o.Get("weights").As<Napi::Object>();
      at::NoGradGuard noGrad;
      for (auto& p : m->named_parameters(true))
        if (w.Has(p.key())) {
          Napi::Value v = w.Get(p.key());
          if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", fn, ": weights.", p.key(), " must be a Tensor");
          p.value().copy_(Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>())->tensor(fn));
        }
    }
    Napi::Object tensors = Napi::Object::New(info.Env());
    // Before the forward: a training-mode forward moves the running statistics.
    for (auto& p : m->named_parameters(true)) tensors.Set(p.key(), NativeTensor::Wrap(info.Env(), p.value().detach().clone()));
    for (auto& b : m->named_buffers(true)) tensors.Set(b.key(), NativeTensor::Wrap(info.Env(), b.value().detach().clone()));
    at::Tensor y = m->forward(x);
    Napi::Object r = Napi::Object::New(info.Env());
    r.Set("output", NativeTensor::Wrap(info.Env(), y));
    r.Set("outChannels", Napi::Number::New(info.Env(), static_cast<double>(m->outChannels())));
    r.Set("tensors", tensors);
    return r;
  });
}

OpRegistrar reg("testing:resnet", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = Napi::Object::New(env);
  t.Set("forward", Napi::Function::New(env, ResNetForward, "forward"));
  testingExports(env, exports).Set("resnet", t);
});

}  // namespace
}  // namespace radkit
