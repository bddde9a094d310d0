// exports.testing.adaPatchStep0: one forward and backward of an nn::AdaPatch layer on random
// features, checked against the fixed-patch samples (see the function). Not public API.
#include <ATen/ATen.h>

#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/adapatch.h"
#include "../ops/adaptive_patch/adaptive_patch.h"

namespace radkit {
namespace {

// adaPatchStep0({ batch, channels, height, width, stride, points, outDim, dtype }): builds an AdaPatch,
// runs it once on random features and back-propagates sum(tokens). Returns the boxes, the fixed
// patches, the largest difference between the tokens and f5 of the fixed-patch samples, and the
// gradient norms of the offset/size heads (non-zero: the boxes can move).
Napi::Value AdaPatchStep0(const Napi::CallbackInfo& info) {
  const char* fn = "testing.adaPatchStep0";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Object o = optionsArg(info, 0, fn);
    const int64_t B = intArg(o.Get("batch"), fn, "batch", 1, 64);
    const int64_t C = intArg(o.Get("channels"), fn, "channels", 1, 1024);
    const int64_t H = intArg(o.Get("height"), fn, "height", 1, 1024);
    const int64_t W = intArg(o.Get("width"), fn, "width", 1, 1024);
    const int64_t s = intArg(o.Get("stride"), fn, "stride", 1, 64);
    const int64_t m = intArg(o.Get("points"), fn, "points", 1, 16);
    const int64_t D = intArg(o.Get("outDim"), fn, "outDim", 1, 4096);
    at::ScalarType dt = dtypeArg(o.Get("dtype"), fn, "dtype", at::kFloat);
    nn::AdaPatch mod(nn::AdaPatchOptions(C, D).stride(s).points(m));
    mod->to(dt);
    mod->reset_parameters();  // initialise the heads in the working dtype
    at::Tensor feats = at::randn({B, C, H, W}, at::TensorOptions().dtype(dt)).requires_grad_(true);
    nn::AdaPatchOutput out = mod->forward(feats);
    at::Tensor fixed = mod->fixedBoxes(out.gridH, out.gridW, feats.options().requires_grad(false)).unsqueeze(0).expand_as(out.boxes);
    at::Tensor expectTokens;
    {
      at::NoGradGuard ng;
      at::Tensor samples = ops::adaptive_patch_sample(feats.detach(), fixed.contiguous(), m);
      expectTokens = mod->f5->forward(samples.reshape({B, out.gridH * out.gridW, C * m * m}));
    }
    out.tokens.sum().backward();
    Napi::Env env = info.Env();
    Napi::Object r = Napi::Object::New(env);
    r.Set("boxes", NativeTensor::Wrap(env, out.boxes.detach().contiguous()));
    r.Set("fixedBoxes", NativeTensor::Wrap(env, fixed.contiguous()));
    r.Set("tokenShape", Napi::Array::New(env));
    Napi::Array shape = Napi::Array::New(env);
    for (int64_t i = 0; i < out.tokens.dim(); ++i) shape.Set(static_cast<uint32_t>(i), Napi::Number::New(env, double(out.tokens.size(i))));
    r.Set("tokenShape", shape);
    r.Set("maxTokenDiff", Napi::Number::New(env, (out.tokens.detach() - expectTokens).abs().max().item<double>()));
    Napi::Object gn = Napi::Object::New(env);
    gn.Set("f1", mod->f1->weight.grad().norm().item<double>());
    gn.Set("f2", mod->f2->weight.grad().norm().item<double>());
    gn.Set("f3", mod->f3->weight.grad().norm().item<double>());
    gn.Set("f4", mod->f4->weight.grad().norm().item<double>());
    gn.Set("f5", mod->f5->weight.grad().norm().item<double>());
    gn.Set("features", feats.grad().norm().item<double>());
    r.Set("gradNorms", gn);
    r.Set("parameters", Napi::Number::New(env, double(mod->parameters().size())));
    return r;
  });
}

OpRegistrar reg("testing:adapatch", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("adaPatchStep0", Napi::Function::New(env, AdaPatchStep0));
});

}  // namespace
}  // namespace radkit
