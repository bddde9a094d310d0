// Composite reference for memoryQuery from standard LibTorch ops (matmul + topk + gather +
// softmax/normalisation + weighted sum), no code shared with native/ops/memory_query. It makes the
// full [B, H, L, S] score tensor and the [B, H, L, k, Dv/H] gathered copy: it is the baseline the
// benchmark compares against, and autograd through it is the backward reference.
#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "../binding/errors.h"
#include "../binding/registry.h"
#include "../binding/tensor.h"

namespace radkit {
namespace {

Napi::Value MemoryQueryRef(const Napi::CallbackInfo& info) {
  return guarded(info, "_testing_memoryQuery", [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const at::Tensor& q = tensorArg(info, 0, "ref", "query");
    const at::Tensor& keys = tensorArg(info, 1, "ref", "keys");
    const at::Tensor& values = tensorArg(info, 2, "ref", "values");
    Napi::Object o = info[3].As<Napi::Object>();
    const int64_t k = o.Get("k").As<Napi::Number>().Int64Value();
    const std::string sim = o.Get("similarity").As<Napi::String>().Utf8Value();
    const std::string wt = o.Get("weighting").As<Napi::String>().Utf8Value();
    const int64_t H = o.Get("heads").IsNumber() ? o.Get("heads").As<Napi::Number>().Int64Value() : 1;
    at::Tensor mask;
    if (o.Get("mask").IsObject()) mask = Napi::ObjectWrap<NativeTensor>::Unwrap(o.Get("mask").As<Napi::Object>())->tensor("ref");
    const int64_t B = q.size(0), L = q.size(1), D = q.size(2), S = keys.size(0), Dv = values.size(1), dh = D / H, dvh = Dv / H;
    at::Tensor qh = q.reshape({B, L, H, dh}).permute({0, 2, 1, 3});       // [B, H, L, dh]
    at::Tensor kh = keys.reshape({S, H, dh}).permute({1, 0, 2});          // [H, S, dh]
    at::Tensor vh = values.reshape({S, H, dvh}).permute({1, 0, 2});       // [H, S, dvh]
    if (sim == "cosine") {
      qh = qh / qh.norm(2, {-1}, true).clamp_min(1e-12);
      kh = kh / kh.norm(2, {-1}, true).clamp_min(1e-12);
    }
    at::Tensor scores = at::matmul(qh, kh.transpose(-1, -2).unsqueeze(0));  // [B, H, L, S]
    if (sim == "scaled-dot") scores = scores / std::sqrt(static_cast<double>(dh));
    if (mask.defined()) scores = scores.masked_fill(mask.logical_not().view({B, 1, 1, S}), -std::numeric_limits<double>::infinity());
    auto [topv, topi] = scores.topk(k, -1);                                   // [B, H, L, k]
    at::Tensor valid = topv > -std::numeric_limits<double>::infinity();
    at::Tensor tv = at::where(valid, topv, at::zeros_like(topv));
    at::Tensor w;
    if (wt == "softmax") {
      at::Tensor mx = std::get<0>(tv.max(-1, true)).detach();
      at::Tensor e = at::exp(tv - mx) * valid;
      w = e / e.sum(-1, true).clamp_min(1e-300);
    } else {
      at::Tensor big = at::full_like(tv, std::numeric_limits<double>::infinity());
      at::Tensor m = at::where(valid, tv, big).amin(-1, true).clamp_max(0);
      at::Tensor u = (tv - m + 1e-6) * valid;
      w = u / u.sum(-1, true).clamp_min(1e-300);
    }
    at::Tensor safe = at::where(valid, topi, at::zeros_like(topi));
    at::Tensor hIdx = at::arange(H, topi.options()).view({1, H, 1, 1});
    at::Tensor gathered = vh.index({hIdx, safe});                             // [B, H, L, k, dvh]
    at::Tensor resp = (w.unsqueeze(-1) * gathered).sum(-2);                   // [B, H, L, dvh]
    resp = resp.permute({0, 2, 1, 3}).reshape({B, L, Dv});
    at::Tensor idx = at::where(valid, topi, at::full_like(topi, -1)).permute({0, 2, 1, 3});
    at::Tensor wo = w.permute({0, 2, 1, 3});
    if (H == 1) {
      idx = idx.squeeze(2);
      wo = wo.squeeze(2);
    }
    Napi::Object out = Napi::Object::New(env);
    out.Set("response", NativeTensor::Wrap(env, resp));
    out.Set("indices", NativeTensor::Wrap(env, idx.contiguous()));
    out.Set("weights", NativeTensor::Wrap(env, wo.contiguous()));
    return out;
  });
}

static OpRegistrar reg("testing:memory_query", [](Napi::Env env, Napi::Object exports) {
  exports.Set("_testing_memoryQuery", Napi::Function::New(env, MemoryQueryRef, "_testing_memoryQuery"));
});

}  // namespace
}  // namespace radkit
