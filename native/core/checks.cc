#include "checks.h"

#include <unistd.h>

#include <sstream>
#include <utility>

namespace radkit {

bool parseDtypeName(const std::string& s, at::ScalarType* out) {
  static const std::pair<const char*, at::ScalarType> table[] = {
      {"float32", at::kFloat}, {"float64", at::kDouble}, {"float16", at::kHalf}, {"bfloat16", at::kBFloat16},
      {"int32", at::kInt},     {"int64", at::kLong},     {"bool", at::kBool},    {"uint8", at::kByte}};
  for (auto& [n, t] : table)
    if (s == n) {
      *out = t;
      return true;
    }
  return false;
}

std::string dtypeName(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kHalf: return "float16";
    case at::kBFloat16: return "bfloat16";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kBool: return "bool";
    case at::kByte: return "uint8";
    default: return std::string("unsupported(") + c10::toString(t) + ")";
  }
}

bool parseDeviceName(const std::string& s, at::Device* out) {
  if (s == "cpu") {
    *out = at::Device(at::kCPU);
    return true;
  }
  if (s == "cuda") {
    *out = at::Device(at::kCUDA, 0);
    return true;
  }
  if (s.rfind("cuda:", 0) == 0 && s.size() > 5 && s.size() < 9 && s.find_first_not_of("0123456789", 5) == std::string::npos) {
    *out = at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(std::stoi(s.substr(5))));
    return true;
  }
  return false;
}

std::string deviceName(const at::Device& d) {
  if (d.is_cpu()) return "cpu";
  if (d.is_cuda()) return "cuda:" + std::to_string(d.has_index() ? d.index() : 0);
  return d.str();
}

std::string shapeString(at::IntArrayRef shape) {
  std::ostringstream os;
  os << "[";
  for (size_t i = 0; i < shape.size(); ++i) os << (i ? ", " : "") << shape[i];
  os << "]";
  return os.str();
}

void checkAllocation(const std::vector<int64_t>& shape, at::ScalarType dtype, const char* fn) {
  static const double physical = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGESIZE));
  double bytes = static_cast<double>(c10::elementSize(dtype));
  for (int64_t d : shape) bytes *= static_cast<double>(d);
  if (bytes > physical)
    fail(ErrorKind::OutOfMemory, "ERR_OUT_OF_MEMORY", "shape ", shapeString(shape), " of ", dtypeName(dtype), " needs ", bytes / 1073741824.0,
         " GiB, more than this machine's ", physical / 1073741824.0, " GiB of memory");
}

void checkSameDevice(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* refName) {
  if (t.device() != ref.device())
    argError("ERR_DEVICE", name, " must be on the device of ", refName, " (", deviceName(ref.device()), "), got ", deviceName(t.device()));
}

void checkSameDtype(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* refName) {
  if (t.scalar_type() != ref.scalar_type())
    argError("ERR_DTYPE", name, " must have the dtype of ", refName, " (", dtypeName(ref.scalar_type()), "), got ",
             dtypeName(t.scalar_type()));
}

bool isOpDtype(const at::Tensor& t) {
  const auto s = t.scalar_type();
  if (s == at::kFloat || s == at::kDouble) return true;
  return t.is_cuda() && (s == at::kHalf || s == at::kBFloat16);
}

const char* opDtypesFor(const at::Tensor& t) {
  return t.is_cuda() ? "float32, float64, float16 or bfloat16" : "float32 or float64 (float16/bfloat16 only on CUDA)";
}

void checkIntegerCast(const at::Tensor& src, at::ScalarType dst, const std::string& what, bool wholeOnly) {
  if (src.scalar_type() == dst || src.numel() == 0 || src.scalar_type() == at::kBool) return;  // bool fits every integer dtype
  if (!at::isIntegralType(dst, /*includeBool=*/false)) return;  // floats; bool means "non-zero" as in PyTorch
  double lo, hi;  // the target's range, exact in double
  switch (dst) {
    case at::kByte: lo = 0, hi = 255; break;
    case at::kChar: lo = -128, hi = 127; break;
    case at::kShort: lo = -32768, hi = 32767; break;
    case at::kInt: lo = -2147483648.0, hi = 2147483647.0; break;
    default: lo = -9223372036854775808.0, hi = 9223372036854775808.0; break;  // int64: [-2^63, 2^63)
  }
  at::Tensor bad;
  if (at::isFloatingType(src.scalar_type())) {
    at::Tensor x = src.detach().to(at::kDouble);
    bad = x.isnan() | (x < lo) | (dst == at::kLong ? x >= hi : x > hi);
    if (wholeOnly) bad = bad | (x != x.trunc());
  } else {
    if (dst == at::kLong) return;  // every integer source fits int64
    at::Tensor x = src.detach().to(at::kLong);
    bad = (x < static_cast<int64_t>(lo)) | (x > static_cast<int64_t>(hi));
  }
  at::Tensor where = bad.flatten().nonzero();
  if (where.numel() == 0) return;
  const int64_t k = where[0].item<int64_t>();
  const int64_t count = where.size(0);
  at::Tensor v = src.detach().flatten()[k].to(at::kCPU);
  std::ostringstream value;
  value.precision(17);
  if (at::isFloatingType(src.scalar_type())) value << v.item<double>();
  else value << v.item<int64_t>();
  std::ostringstream range;
  if (dst == at::kLong) range << "[-2^63, 2^63)";
  else range << "[" << static_cast<int64_t>(lo) << ", " << static_cast<int64_t>(hi) << "]";
  argError("ERR_INVALID_ARG", what, ": element ", k, " is ", value.str(), ", which ", dtypeName(dst), " cannot hold exactly (range ",
           range.str(), wholeOnly ? ", whole numbers only" : "", "); ", count, count == 1 ? " element is" : " elements are",
           " affected. Convert the values yourself if that is what you want.");
}

}  // namespace radkit

