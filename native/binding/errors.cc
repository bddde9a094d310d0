#include "errors.h"

namespace radkit {
namespace {

Napi::FunctionReference errorClasses[4];

}  // namespace

Napi::Value makeJsError(Napi::Env env, const RadkitFailure& failure, const char* fn) {
  std::string message = std::string(fn) + ": " + failure.what();
  auto& ctor = errorClasses[static_cast<int>(failure.kind)];
  Napi::Object err;
  if (!ctor.IsEmpty()) {
    err = ctor.New({Napi::String::New(env, message), Napi::String::New(env, failure.code), Napi::String::New(env, fn)});
  } else {
    err = Napi::Error::New(env, message).Value();
    err.Set("code", failure.code);
    err.Set("fn", fn);
  }
  return err;
}

void setErrorClasses(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsObject()) throw Napi::TypeError::New(info.Env(), "setErrorClasses: expected an object");
  Napi::Object o = info[0].As<Napi::Object>();
  const char* names[4] = {"argument", "disposed", "outOfMemory", "native"};
  for (int i = 0; i < 4; ++i) {
    Napi::Value v = o.Get(names[i]);
    if (!v.IsFunction()) throw Napi::TypeError::New(info.Env(), std::string("setErrorClasses: missing class ") + names[i]);
    errorClasses[i] = Napi::Persistent(v.As<Napi::Function>());
  }
}

}  // namespace radkit
