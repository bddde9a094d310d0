// Testing and benchmarking bindings for the kernels of issue 3 (adaptivePatchSample, maxSimilarity,
// AdaPatch). Exposed under exports.testing.*; not part of the public API.
//   - composite references built from standard LibTorch ops (grid_sample; einsum-then-max), used by the
//     tests (float64 agreement) and by bench/ (ratios in the same run);
//   - a CPU allocation tracker (peak bytes) for the memory figures;
//   - backwardMany (autograd over several outputs at once) and a non-contiguous copy helper;
//   - an AdaPatch step-0 check.
#include <ATen/ATen.h>
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <torch/csrc/autograd/autograd.h>

#include <atomic>
#include <chrono>
#include <mutex>

#include "../binding/allocator_compat.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"
#include "../nn/adapatch.h"
#include "../ops/adaptive_patch/adaptive_patch.h"
#include "../ops/max_similarity/max_similarity.h"

namespace radkit {
namespace {

// ---------------------------------------------------------------- composite references

at::Tensor apsReference(const at::Tensor& features, const at::Tensor& boxes, int64_t m) {
  const int64_t B = features.size(0), C = features.size(1), H = features.size(2), W = features.size(3);
  const int64_t P = boxes.size(1);
  auto opts = boxes.options();
  at::Tensor t = (at::arange(m, opts) + 0.5) / static_cast<double>(m) - 0.5;  // [m], cell centre in box units
  at::Tensor cx = boxes.select(2, 0).unsqueeze(-1), cy = boxes.select(2, 1).unsqueeze(-1);
  at::Tensor w = boxes.select(2, 2).unsqueeze(-1), h = boxes.select(2, 3).unsqueeze(-1);
  at::Tensor xs = cx + w * t;  // [B, P, m] (u)
  at::Tensor ys = cy + h * t;  // [B, P, m] (v)
  at::Tensor gx = (xs * (2.0 / W) - 1.0).unsqueeze(2).expand({B, P, m, m});  // [B, P, v, u]
  at::Tensor gy = (ys * (2.0 / H) - 1.0).unsqueeze(3).expand({B, P, m, m});
  at::Tensor grid = at::stack({gx, gy}, -1).reshape({B, P * m, m, 2});
  at::Tensor out = at::grid_sampler(features, grid, /*bilinear*/ 0, /*zeros*/ 0, /*align_corners*/ false);
  return out.view({B, C, P, m, m}).permute({0, 2, 1, 3, 4});  // [B, P, C, m, m] (a view, no copy)
}

ops::MaxSimilarityResult msReference(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                                     const at::Tensor& textMask) {
  const int64_t Bi = image.size(0), N = image.size(1), Bt = text.size(0), K = text.size(1);
  auto bopt = image.options().dtype(at::kBool);
  at::Tensor im = imageMask.defined() ? imageMask : at::ones({Bi, N}, bopt);
  at::Tensor tm = textMask.defined() ? textMask : at::ones({Bt, K}, bopt);
  at::Tensor sim = at::einsum("ind,jkd->ijnk", {image, text});  // [Bi, Bt, N, K]
  const double ninf = -std::numeric_limits<double>::infinity();
  at::Tensor s1 = sim.masked_fill(tm.logical_not().view({1, Bt, 1, K}), ninf);
  auto [m1, a1] = s1.max(3);  // [Bi, Bt, N]
  at::Tensor s2 = sim.masked_fill(im.logical_not().view({Bi, 1, N, 1}), ninf);
  auto [m2, a2] = s2.max(2);  // [Bi, Bt, K]
  at::Tensor ni = im.sum(1).to(image.scalar_type()).view({Bi, 1}), kj = tm.sum(1).to(image.scalar_type()).view({1, Bt});
  at::Tensor rowReal = im.view({Bi, 1, N}).expand({Bi, Bt, N}), colReal = tm.view({1, Bt, K}).expand({Bi, Bt, K});
  at::Tensor valid = (ni > 0) & (kj > 0);
  ops::MaxSimilarityResult r;
  r.imageToText = at::where(valid, at::where(rowReal, m1, at::zeros_like(m1)).sum(2) / ni.clamp_min(1), at::zeros({}, image.options()));
  r.textToImage = at::where(valid, at::where(colReal, m2, at::zeros_like(m2)).sum(2) / kj.clamp_min(1), at::zeros({}, image.options()));
  r.imageToTextArgmax = at::where(rowReal & valid.unsqueeze(2), a1, at::full_like(a1, -1));
  r.textToImageArgmax = at::where(colReal & valid.unsqueeze(2), a2, at::full_like(a2, -1));
  return r;
}

// ---------------------------------------------------------------- allocation tracker

std::atomic<int64_t> gCurrent{0}, gPeak{0};

struct TrackedCtx {
  c10::DataPtr inner;
  int64_t bytes;
};

void trackedDelete(void* p) {
  auto* ctx = static_cast<TrackedCtx*>(p);
  gCurrent -= ctx->bytes;
  delete ctx;
}

struct TrackingAllocator final : public c10::Allocator {
  c10::Allocator* base = nullptr;
  c10::DataPtr allocate(size_t n) RADKIT_ALLOCATE_CONST override {
    c10::DataPtr inner = base->allocate(n);
    void* data = inner.get();
    auto* ctx = new TrackedCtx{std::move(inner), static_cast<int64_t>(n)};
    int64_t now = gCurrent += static_cast<int64_t>(n);
    int64_t peak = gPeak.load();
    while (now > peak && !gPeak.compare_exchange_weak(peak, now)) {
    }
    return c10::DataPtr(data, ctx, &trackedDelete, c10::Device(c10::DeviceType::CPU));
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
  RADKIT_ALLOCATOR_COPY_DATA
};

TrackingAllocator* tracker() {
  static TrackingAllocator* t = [] {
    auto* a = new TrackingAllocator();
    a->base = c10::GetCPUAllocator();
    c10::SetCPUAllocator(a, /*priority*/ 100);
    return a;
  }();
  return t;
}

// ---------------------------------------------------------------- bindings

Napi::Object resultObject(Napi::Env env, const ops::MaxSimilarityResult& r) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("imageToText", NativeTensor::Wrap(env, r.imageToText));
  o.Set("textToImage", NativeTensor::Wrap(env, r.textToImage));
  o.Set("imageToTextArgmax", NativeTensor::Wrap(env, r.imageToTextArgmax));
  o.Set("textToImageArgmax", NativeTensor::Wrap(env, r.textToImageArgmax));
  return o;
}

at::Tensor optTensor(const Napi::CallbackInfo& info, size_t i, const char* fn, const char* name) {
  if (i >= info.Length() || info[i].IsUndefined() || info[i].IsNull()) return at::Tensor();
  return tensorArg(info, i, fn, name);
}

Napi::Value ApsReference(const Napi::CallbackInfo& info) {
  const char* fn = "testing.adaptivePatchSampleReference";
  return guarded(info, fn, [&]() -> Napi::Value {
    return NativeTensor::Wrap(info.Env(), apsReference(tensorArg(info, 0, fn, "features"), tensorArg(info, 1, fn, "boxes"),
                                                       intArg(info[2], fn, "points", 1, 64)));
  });
}

Napi::Value MsReference(const Napi::CallbackInfo& info) {
  const char* fn = "testing.maxSimilarityReference";
  return guarded(info, fn, [&]() -> Napi::Value {
    return resultObject(info.Env(), msReference(tensorArg(info, 0, fn, "image"), tensorArg(info, 1, fn, "text"),
                                                optTensor(info, 2, fn, "imageMask"), optTensor(info, 3, fn, "textMask")));
  });
}

// The raw (no autograd) maxSimilarity forward, for benchmarks of the kernel alone.
Napi::Value MsRaw(const Napi::CallbackInfo& info) {
  const char* fn = "testing.maxSimilarityRaw";
  return guarded(info, fn, [&]() -> Napi::Value {
    return resultObject(info.Env(), ops::max_similarity_forward(tensorArg(info, 0, fn, "image"), tensorArg(info, 1, fn, "text"),
                                                                optTensor(info, 2, fn, "imageMask"),
                                                                optTensor(info, 3, fn, "textMask")));
  });
}

// backwardMany([outputs], [gradOutputs]): one autograd pass over several outputs.
Napi::Value BackwardMany(const Napi::CallbackInfo& info) {
  const char* fn = "testing.backwardMany";
  return guarded(info, fn, [&]() -> Napi::Value {
    if (!info[0].IsArray() || !info[1].IsArray()) argError("ERR_INVALID_ARG", "expected two arrays of tensors");
    Napi::Array a = info[0].As<Napi::Array>(), b = info[1].As<Napi::Array>();
    if (a.Length() != b.Length()) argError("ERR_INVALID_ARG", "outputs and gradOutputs differ in length");
    std::vector<at::Tensor> outs, grads;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      Napi::Value x = a.Get(i), y = b.Get(i);
      if (!NativeTensor::IsInstance(x) || !NativeTensor::IsInstance(y)) argError("ERR_INVALID_ARG", "expected tensors");
      outs.push_back(Napi::ObjectWrap<NativeTensor>::Unwrap(x.As<Napi::Object>())->tensor(fn));
      grads.push_back(Napi::ObjectWrap<NativeTensor>::Unwrap(y.As<Napi::Object>())->tensor(fn));
    }
    torch::autograd::backward(outs, grads);
    return info.Env().Undefined();
  });
}

// nonContiguous(t): the same values in a transposed-storage layout (swaps the last two dims of the
// storage; a permuted view for rank 1 is impossible, so rank >= 2).
Napi::Value NonContiguous(const Napi::CallbackInfo& info) {
  const char* fn = "testing.nonContiguous";
  return guarded(info, fn, [&]() -> Napi::Value {
    const at::Tensor& t = tensorArg(info, 0, fn, "t");
    if (t.dim() < 2) argError("ERR_SHAPE", "needs rank >= 2");
    at::Tensor r = t.detach().transpose(0, t.dim() - 1).contiguous().transpose(0, t.dim() - 1);
    if (t.requires_grad()) r.requires_grad_(true);
    return NativeTensor::Wrap(info.Env(), r);
  });
}

Napi::Value IsContiguous(const Napi::CallbackInfo& info) {
  return guarded(info, "testing.isContiguous", [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), tensorArg(info, 0, "testing.isContiguous", "t").is_contiguous());
  });
}

// allocTracker(): installs the tracking CPU allocator (once) and resets the peak to the current level.
Napi::Value AllocTrackerReset(const Napi::CallbackInfo& info) {
  tracker();
  gPeak = gCurrent.load();
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("current", Napi::Number::New(info.Env(), static_cast<double>(gCurrent.load())));
  return o;
}

Napi::Value AllocTrackerRead(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("current", Napi::Number::New(info.Env(), static_cast<double>(gCurrent.load())));
  o.Set("peak", Napi::Number::New(info.Env(), static_cast<double>(gPeak.load())));
  return o;
}

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

OpRegistrar reg("testing:kernels1", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("adaptivePatchSampleReference", Napi::Function::New(env, ApsReference));
  t.Set("maxSimilarityReference", Napi::Function::New(env, MsReference));
  t.Set("maxSimilarityRaw", Napi::Function::New(env, MsRaw));
  t.Set("backwardMany", Napi::Function::New(env, BackwardMany));
  t.Set("nonContiguous", Napi::Function::New(env, NonContiguous));
  t.Set("isContiguous", Napi::Function::New(env, IsContiguous));
  t.Set("allocTrackerReset", Napi::Function::New(env, AllocTrackerReset));
  t.Set("allocTrackerRead", Napi::Function::New(env, AllocTrackerRead));
  t.Set("adaPatchStep0", Napi::Function::New(env, AdaPatchStep0));
});

}  // namespace
}  // namespace radkit
