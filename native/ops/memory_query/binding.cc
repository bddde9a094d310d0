// N-API binding: ops.memoryQuery(query, keys, values, { k, similarity, weighting, heads?, mask? }).
#include <string>

#include "../../binding/errors.h"
#include "../../binding/registry.h"
#include "../../binding/tensor.h"
#include "memory_query.h"

namespace radkit {
namespace {

Napi::Value MemoryQuery(const Napi::CallbackInfo& info) {
  const char* fn = "ops.memoryQuery";
  return guarded(info, fn, [&]() -> Napi::Value {
    Napi::Env env = info.Env();
    const at::Tensor& query = tensorArg(info, 0, fn, "query");
    const at::Tensor& keys = tensorArg(info, 1, fn, "keys");
    const at::Tensor& values = tensorArg(info, 2, fn, "values");
    Napi::Object o = optionsArg(info, 3, fn);
    ops::MemoryQueryOptions opts;
    opts.k = intArg(o.Get("k"), fn, "options.k", 1, int64_t{1} << 52);
    Napi::Value h = o.Get("heads");
    opts.heads = h.IsUndefined() || h.IsNull() ? 1 : intArg(h, fn, "options.heads", 1, int64_t{1} << 30);
    Napi::Value sim = o.Get("similarity");
    std::string s = sim.IsString() ? sim.As<Napi::String>().Utf8Value() : "";
    if (s == "dot") opts.similarity = ops::Similarity::Dot;
    else if (s == "scaled-dot") opts.similarity = ops::Similarity::ScaledDot;
    else if (s == "cosine") opts.similarity = ops::Similarity::Cosine;
    else argError("ERR_INVALID_ARG", "options.similarity must be 'dot', 'scaled-dot' or 'cosine', got ", describeJs(sim));
    Napi::Value wt = o.Get("weighting");
    std::string w = wt.IsString() ? wt.As<Napi::String>().Utf8Value() : "";
    if (w == "softmax") opts.weighting = ops::Weighting::Softmax;
    else if (w == "normalized") opts.weighting = ops::Weighting::Normalized;
    else argError("ERR_INVALID_ARG", "options.weighting must be 'softmax' or 'normalized', got ", describeJs(wt));
    at::Tensor mask;
    Napi::Value mv = o.Get("mask");
    if (!mv.IsUndefined() && !mv.IsNull()) {
      if (!NativeTensor::IsInstance(mv)) argError("ERR_INVALID_ARG", "options.mask must be a Tensor, got ", describeJs(mv));
      NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(mv.As<Napi::Object>());
      if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", "options.mask was disposed; it can no longer be used");
      mask = nt->tensor(fn);
    }
    ops::MemoryQueryResult r = ops::memoryQuery(query, keys, values, mask, opts);
    Napi::Object out = Napi::Object::New(env);
    out.Set("response", NativeTensor::Wrap(env, r.response));
    out.Set("indices", NativeTensor::Wrap(env, r.indices));
    out.Set("weights", NativeTensor::Wrap(env, r.weights));
    return out;
  });
}

static OpRegistrar reg("memory_query", [](Napi::Env env, Napi::Object exports) {
  exports.Set("memoryQuery", Napi::Function::New(env, MemoryQuery, "memoryQuery"));
});

}  // namespace
}  // namespace radkit
