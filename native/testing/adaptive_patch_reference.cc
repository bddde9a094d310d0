// exports.testing.adaptivePatchSampleReference: the composite LibTorch reference of
// ops.adaptivePatchSample (grid_sample, bilinear, zeros, align_corners=False), used by the tests
// (float64 agreement) and by bench/adaptivePatchSample.ts (ratios in the same run). Not public API.
#include <ATen/ATen.h>

#include "../binding/registry.h"
#include "../binding/tensor.h"

namespace radkit {
namespace {

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

Napi::Value ApsReference(const Napi::CallbackInfo& info) {
  const char* fn = "testing.adaptivePatchSampleReference";
  return guarded(info, fn, [&]() -> Napi::Value {
    return NativeTensor::Wrap(info.Env(), apsReference(tensorArg(info, 0, fn, "features"), tensorArg(info, 1, fn, "boxes"),
                                                       intArg(info[2], fn, "points", 1, 64)));
  });
}

OpRegistrar reg("testing:adaptive_patch", [](Napi::Env env, Napi::Object exports) {
  Napi::Object t = testingExports(env, exports);
  t.Set("adaptivePatchSampleReference", Napi::Function::New(env, ApsReference));
});

}  // namespace
}  // namespace radkit
