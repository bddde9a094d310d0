// N-API surface of native/core/safetensors (lib/io/safetensors.ts wraps it):
//   safetensorsHeader(file) -> { entries: [{ name, dtype, shape, begin, end }], metadata, headerBytes, fileBytes }
//   safetensorsRead(file, { dtype?, names? }) -> { tensors: { name: NativeTensor }, metadata }
//   safetensorsWrite(file, { name: NativeTensor }, metadata?)  (atomic)
#include "../core/safetensors.h"

#include "errors.h"
#include "registry.h"
#include "tensor.h"

namespace radkit {
namespace {

std::string fileArg(const Napi::CallbackInfo& info, size_t i) {
  if (i >= info.Length() || !info[i].IsString()) argError("ERR_INVALID_ARG", "file must be a path string, got ", describeJs(i < info.Length() ? info[i] : info.Env().Undefined()));
  return info[i].As<Napi::String>().Utf8Value();
}

const char* dtypeCodeName(at::ScalarType t) {
  switch (t) {
    case at::kShort: return "int16";
    case at::kChar: return "int8";
    default: return nullptr;
  }
}

Napi::Value Header(const Napi::CallbackInfo& info) {
  const char* fn = "io.safetensorsHeader";
  return guarded(info, fn, [&]() -> Napi::Value {
    auto f = SafetensorsFile::open(fileArg(info, 0));
    Napi::Env env = info.Env();
    Napi::Array entries = Napi::Array::New(env, f->entries().size());
    uint32_t i = 0;
    for (const auto& e : f->entries()) {
      Napi::Object o = Napi::Object::New(env);
      o.Set("name", e.name);
      const char* odd = dtypeCodeName(e.dtype);
      o.Set("dtype", odd ? std::string(odd) : dtypeName(e.dtype));
      o.Set("code", e.dtypeCode);
      Napi::Array shape = Napi::Array::New(env, e.shape.size());
      for (size_t d = 0; d < e.shape.size(); ++d) shape.Set(static_cast<uint32_t>(d), static_cast<double>(e.shape[d]));
      o.Set("shape", shape);
      o.Set("begin", static_cast<double>(e.begin));
      o.Set("end", static_cast<double>(e.end));
      entries.Set(i++, o);
    }
    Napi::Object meta = Napi::Object::New(env);
    for (auto& [k, v] : f->metadata()) meta.Set(k, v);
    Napi::Object out = Napi::Object::New(env);
    out.Set("entries", entries);
    out.Set("metadata", meta);
    out.Set("fileBytes", static_cast<double>(f->fileSize()));
    return out;
  });
}

Napi::Value Read(const Napi::CallbackInfo& info) {
  const char* fn = "io.readSafetensors";
  return guarded(info, fn, [&]() -> Napi::Value {
    auto f = SafetensorsFile::open(fileArg(info, 0));
    Napi::Object o = optionsArg(info, 1, fn);
    at::ScalarType dtype = at::ScalarType::Undefined;
    if (!o.Get("dtype").IsUndefined() && !o.Get("dtype").IsNull()) dtype = dtypeArg(o.Get("dtype"), fn, "options.dtype", at::kFloat);
    std::vector<const SafetensorsEntry*> wanted;
    Napi::Value names = o.Get("names");
    if (names.IsUndefined() || names.IsNull()) {
      for (const auto& e : f->entries()) wanted.push_back(&e);
    } else {
      if (!names.IsArray()) argError("ERR_INVALID_ARG", "options.names must be an array of tensor names, got ", describeJs(names));
      Napi::Array a = names.As<Napi::Array>();
      for (uint32_t i = 0; i < a.Length(); ++i) {
        if (!a.Get(i).IsString()) argError("ERR_INVALID_ARG", "options.names[", i, "] must be a string");
        std::string n = a.Get(i).As<Napi::String>().Utf8Value();
        const SafetensorsEntry* e = f->find(n);
        if (!e) argError("ERR_INVALID_ARG", f->path(), " has no tensor '", n, "'");
        wanted.push_back(e);
      }
    }
    for (const auto* e : wanted) {
      if (dtypeCodeName(e->dtype) && dtype == at::ScalarType::Undefined)
        argError("ERR_DTYPE", f->path(), ": tensor '", e->name, "' is ", e->dtypeCode, ", which radkit tensors do not hold; pass options.dtype to convert it");
      checkAllocation(e->shape, dtype == at::ScalarType::Undefined ? e->dtype : dtype, fn);
    }
    Napi::Object tensors = Napi::Object::New(info.Env());
    for (const auto* e : wanted) tensors.Set(e->name, NativeTensor::Wrap(info.Env(), f->read(*e, dtype)));
    Napi::Object meta = Napi::Object::New(info.Env());
    for (auto& [k, v] : f->metadata()) meta.Set(k, v);
    Napi::Object out = Napi::Object::New(info.Env());
    out.Set("tensors", tensors);
    out.Set("metadata", meta);
    return out;
  });
}

Napi::Value Write(const Napi::CallbackInfo& info) {
  const char* fn = "io.writeSafetensors";
  return guarded(info, fn, [&]() -> Napi::Value {
    std::string file = fileArg(info, 0);
    if (info.Length() < 2 || !info[1].IsObject() || info[1].IsArray()) argError("ERR_INVALID_ARG", "tensors must be an object of name -> Tensor, got ", describeJs(info[1]));
    Napi::Object dict = info[1].As<Napi::Object>();
    Napi::Array keys = dict.GetPropertyNames();
    std::vector<std::pair<std::string, at::Tensor>> tensors;
    for (uint32_t i = 0; i < keys.Length(); ++i) {
      std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
      Napi::Value v = dict.Get(k);
      if (!NativeTensor::IsInstance(v)) argError("ERR_INVALID_ARG", "tensors['", k, "'] must be a Tensor, got ", describeJs(v));
      NativeTensor* nt = Napi::ObjectWrap<NativeTensor>::Unwrap(v.As<Napi::Object>());
      if (nt->isDisposed()) fail(ErrorKind::Disposed, "ERR_DISPOSED", "tensors['", k, "'] was disposed");
      tensors.emplace_back(k, nt->tensor(fn));
    }
    std::map<std::string, std::string> meta;
    if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
      if (!info[2].IsObject() || info[2].IsArray()) argError("ERR_INVALID_ARG", "metadata must be an object of strings, got ", describeJs(info[2]));
      Napi::Object m = info[2].As<Napi::Object>();
      Napi::Array mk = m.GetPropertyNames();
      for (uint32_t i = 0; i < mk.Length(); ++i) {
        std::string k = mk.Get(i).As<Napi::String>().Utf8Value();
        if (!m.Get(k).IsString()) argError("ERR_INVALID_ARG", "metadata['", k, "'] must be a string, got ", describeJs(m.Get(k)));
        meta[k] = m.Get(k).As<Napi::String>().Utf8Value();
      }
    }
    writeSafetensors(file, tensors, meta);
    return info.Env().Undefined();
  });
}

OpRegistrar reg("safetensors", [](Napi::Env env, Napi::Object exports) {
  exports.Set("safetensorsHeader", Napi::Function::New(env, Header, "safetensorsHeader"));
  exports.Set("safetensorsRead", Napi::Function::New(env, Read, "safetensorsRead"));
  exports.Set("safetensorsWrite", Napi::Function::New(env, Write, "safetensorsWrite"));
});

}  // namespace
}  // namespace radkit
