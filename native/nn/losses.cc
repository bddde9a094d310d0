// Training losses (see losses.h for the equations and the choices made where the papers are silent).
#include "losses.h"

#include <cmath>
#include <limits>

#include "../core/checks.h"

namespace radkit {
namespace nn {
namespace losses {
namespace {

// ---- argument checks: each names the argument, what was expected and what was given
std::string typeName(const at::Tensor& t) { return dtypeName(t.scalar_type()); }

void checkDefined(const at::Tensor& t, const char* name) {
  if (!t.defined()) argError("ERR_INVALID_ARG", name, " must be a tensor");
}

// A float tensor of the given rank (-1: rank >= 1), as the dtype the loss computes in.
at::Tensor floatInput(const at::Tensor& t, const char* name, int64_t rank, const char* layout) {
  checkDefined(t, name);
  if (rank >= 0 ? t.dim() != rank : t.dim() < 1) argError("ERR_SHAPE", name, " must have shape ", layout, ", got ", t.sizes());
  auto s = t.scalar_type();
  if (s == at::kHalf || s == at::kBFloat16) return t.to(at::kFloat);
  if (s != at::kFloat && s != at::kDouble)
    argError("ERR_DTYPE", name, " must be float32 or float64 (float16/bfloat16 computed in float32), got ", typeName(t));
  return t;
}

void checkInteger(const at::Tensor& t, const char* name) {
  checkDefined(t, name);
  if (!at::isIntegralType(t.scalar_type(), /*includeBool=*/false))
    argError("ERR_DTYPE", name, " must be an integer tensor (int32 or int64), got ", typeName(t));
}

void checkDevice(const at::Tensor& t, const char* name, const at::Tensor& ref, const char* refName) {
  if (t.device() != ref.device())
    argError("ERR_DEVICE", name, " must be on ", refName, "'s device (", deviceName(ref.device()), "), got ", deviceName(t.device()));
}

// `t` must have shape `lead` (the leading dims of `ref`).
void checkLeading(const at::Tensor& t, const char* name, at::IntArrayRef lead, const char* what) {
  if (t.sizes() != lead) argError("ERR_SHAPE", name, " must have shape ", lead, " (", what, "), got ", t.sizes());
}

void checkTemperature(double temperature) {
  if (!std::isfinite(temperature) || !(temperature > 0))
    argError("ERR_INVALID_ARG", "temperature must be a finite number > 0, got ", temperature);
}

// 0/1 entries only (bool passes as is); returns the bool tensor.
at::Tensor zeroOne(const at::Tensor& t, const char* name, const char* meaning) {
  if (t.scalar_type() == at::kBool) return t;
  at::Tensor nz = t.ne(0);
  if (t.numel() && nz.logical_and(t.ne(1)).any().item<bool>())
    argError("ERR_INVALID_ARG", name, " must hold only 0 and 1 (", meaning, "), found another value");
  return nz;
}

void checkRange(const at::Tensor& targets, int64_t classes, const char* name) {
  if (!targets.numel()) return;
  auto lo = targets.min().item<int64_t>(), hi = targets.max().item<int64_t>();
  if (lo < 0 || hi >= classes)
    argError("ERR_INVALID_ARG", name, " must lie in [0, ", classes, ") (the size of the logits' last dimension), found ", lo < 0 ? lo : hi);
}

at::Tensor unitRows(const at::Tensor& x) { return x / x.norm(2, {-1}, /*keepdim=*/true).clamp_min(1e-12); }

// -log softmax(logits)[target] along the last dim; targets [...] int64, logits [..., K].
at::Tensor targetNll(const at::Tensor& logProbs, const at::Tensor& targets) {
  return -logProbs.gather(-1, targets.to(at::kLong).unsqueeze(-1)).squeeze(-1);
}

// Zero with a (zero) gradient to x, for losses over nothing.
at::Tensor zeroLoss(const at::Tensor& x) { return x.sum() * 0; }

}  // namespace

at::Tensor symmetricInfoNCE(const at::Tensor& a0, const at::Tensor& b0, const InfoNCEOptions& o) {
  at::Tensor a = floatInput(a0, "a", 2, "[B, D]"), b = floatInput(b0, "b", 2, "[B, D]");
  if (a0.scalar_type() != b0.scalar_type())
    argError("ERR_DTYPE", "a and b must have one dtype, got ", typeName(a0), " and ", typeName(b0));
  checkDevice(b, "b", a, "a");
  if (a.sizes() != b.sizes()) argError("ERR_SHAPE", "a and b must have one shape [B, D] (row i of a pairs with row i of b), got ", a.sizes(), " and ", b.sizes());
  if (a.size(0) < 1) argError("ERR_SHAPE", "a and b must have at least one row, got ", a.sizes());
  checkTemperature(o.temperature);
  if (o.normalize) a = unitRows(a), b = unitRows(b);
  at::Tensor s = at::matmul(a, b.t()) / o.temperature;  // [B, B]
  at::Tensor aToB = at::log_softmax(s, 1).diagonal().mean();
  at::Tensor bToA = at::log_softmax(s, 0).diagonal().mean();
  return -0.5 * (aToB + bToA);
}

at::Tensor noisyPositiveInfoNCE(const at::Tensor& a0, const at::Tensor& n0, const InfoNCEOptions& o) {
  at::Tensor a = floatInput(a0, "anchors", 2, "[B, D]"), n = floatInput(n0, "noise", 2, "[B, D]");
  if (a0.scalar_type() != n0.scalar_type())
    argError("ERR_DTYPE", "anchors and noise must have one dtype, got ", typeName(a0), " and ", typeName(n0));
  checkDevice(n, "noise", a, "anchors");
  if (a.sizes() != n.sizes()) argError("ERR_SHAPE", "anchors and noise must have one shape [B, D], got ", a.sizes(), " and ", n.sizes());
  if (a.size(0) < 1) argError("ERR_SHAPE", "anchors must have at least one row, got ", a.sizes());
  checkTemperature(o.temperature);
  at::Tensor k = a + n;
  if (o.normalize) a = unitRows(a), k = unitRows(k);
  at::Tensor s = at::matmul(a, k.t()) / o.temperature;  // [B, B]: row i against every key
  return -at::log_softmax(s, 1).diagonal().mean();
}

at::Tensor supervisedContrastive(const at::Tensor& f0, const at::Tensor& labels, const SupConOptions& o) {
  at::Tensor z = floatInput(f0, "features", 2, "[N, D]");
  const int64_t n = z.size(0);
  checkDefined(labels, "labels");
  checkDevice(labels, "labels", z, "features");
  if ((labels.dim() != 1 && labels.dim() != 2) || labels.size(0) != n)
    argError("ERR_SHAPE", "labels must be class ids [N] or multi-hot [N, C] with N = ", n, " (the rows of features), got ", labels.sizes());
  checkTemperature(o.temperature);
  at::Tensor eye = at::eye(n, z.options().dtype(at::kBool));
  at::Tensor pos;
  if (labels.dim() == 1) {
    checkInteger(labels, "labels (class ids [N])");
    pos = labels.unsqueeze(1).eq(labels.unsqueeze(0));
  } else {
    // Share at least one label: (P P^T)_ij = number of labels rows i and j share.
    at::Tensor p = zeroOne(labels, "labels (multi-hot [N, C])", "multi-hot: 1 where the row has the label").to(z.scalar_type());
    pos = at::matmul(p, p.t()).gt(0.5);
  }
  if (o.instances.defined()) {
    checkInteger(o.instances, "instances");
    checkDevice(o.instances, "instances", z, "features");
    checkLeading(o.instances, "instances", {n}, "one id per row of features");
    pos = pos.logical_or(o.instances.unsqueeze(1).eq(o.instances.unsqueeze(0)));
  }
  pos = pos.logical_and(eye.logical_not());
  if (n < 2) return zeroLoss(z);  // no j != i: no anchor has a positive (and the denominator is empty)

  if (o.normalize) z = unitRows(z);
  at::Tensor s = at::matmul(z, z.t()) / o.temperature;                               // [N, N]
  at::Tensor logDenominator = at::logsumexp(s.masked_fill(eye, -std::numeric_limits<double>::infinity()), {1}, true);  // j != i
  at::Tensor logProb = (s - logDenominator).masked_fill(pos.logical_not(), 0);
  at::Tensor positives = pos.sum(1).to(z.scalar_type());  // |P(i)|
  at::Tensor perAnchor = -logProb.sum(1) / positives.clamp_min(1);
  at::Tensor anchors = positives.gt(0).sum().to(z.scalar_type());  // N'
  return perAnchor.sum() / anchors.clamp_min(1);
}

at::Tensor focalLoss(const at::Tensor& l0, const at::Tensor& targets, const FocalOptions& o) {
  at::Tensor logits = floatInput(l0, "logits", -1, "[..., K]");
  const int64_t k = logits.size(-1);
  checkInteger(targets, "targets");
  checkDevice(targets, "targets", logits, "logits");
  checkLeading(targets, "targets", logits.sizes().slice(0, logits.dim() - 1), "the logits' shape without the class dimension");
  if (!std::isfinite(o.gamma) || o.gamma < 0) argError("ERR_INVALID_ARG", "gamma must be a finite number >= 0, got ", o.gamma);
  if (k < 1) argError("ERR_SHAPE", "logits must have at least one class (K >= 1), got ", logits.sizes());
  checkRange(targets, k, "targets");
  at::Tensor alpha;
  if (o.alpha.defined()) {
    alpha = floatInput(o.alpha, "alpha", 1, "[K]").to(logits.scalar_type());
    checkDevice(alpha, "alpha", logits, "logits");
    if (alpha.size(0) != k) argError("ERR_SHAPE", "alpha must have shape [K] = [", k, "] (one weight per class), got ", alpha.sizes());
    if (!at::isfinite(alpha).all().item<bool>() || alpha.lt(0).any().item<bool>())
      argError("ERR_INVALID_ARG", "alpha must hold finite weights >= 0");
  }
  if (!targets.numel()) return zeroLoss(logits);

  at::Tensor nll = targetNll(at::log_softmax(logits, -1), targets);  // l
  at::Tensor loss = nll;
  if (o.gamma > 0) {
    // 1 - p_t = -expm1(-l), exact for small l. With gamma < 1 the factor's derivative is infinite at
    // p_t = 1: a floor of the smallest normal number keeps the gradient finite there (its value
    // then multiplies l ~ 0).
    double floor = o.gamma < 1 ? std::numeric_limits<float>::min() : 0.0;
    loss = at::pow(at::neg(at::expm1(-nll)).clamp_min(floor), o.gamma) * nll;
  }
  if (alpha.defined()) loss = loss * alpha.index_select(0, targets.reshape({-1}).to(at::kLong)).view(targets.sizes());
  return loss.mean();
}

at::Tensor maskedCrossEntropy(const at::Tensor& l0, const at::Tensor& targets, const at::Tensor& mask0,
                              const MaskedCEOptions& o) {
  at::Tensor logits = floatInput(l0, "logits", -1, "[..., V] (e.g. [B, T, V])");
  const int64_t v = logits.size(-1);
  at::IntArrayRef lead = logits.sizes().slice(0, logits.dim() - 1);
  checkInteger(targets, "targets");
  checkDevice(targets, "targets", logits, "logits");
  checkLeading(targets, "targets", lead, "the logits' shape without the vocabulary dimension");
  checkDefined(mask0, "mask");
  checkDevice(mask0, "mask", logits, "logits");
  checkLeading(mask0, "mask", lead, "the targets' shape");
  if (!std::isfinite(o.labelSmoothing) || o.labelSmoothing < 0 || o.labelSmoothing > 1)
    argError("ERR_INVALID_ARG", "labelSmoothing must be a number in [0, 1], got ", o.labelSmoothing);
  if (v < 1) argError("ERR_SHAPE", "logits must have a vocabulary of at least one entry (V >= 1), got ", logits.sizes());
  at::Tensor mask = zeroOne(mask0, "mask", "1 where the position counts");
  at::Tensor read = targets.masked_fill(mask.logical_not(), 0);  // padding ids are never read
  checkRange(read.masked_select(mask), v, "targets (where mask is 1)");

  at::Tensor logProbs = at::log_softmax(logits, -1);
  at::Tensor loss = targetNll(logProbs, read);
  if (o.labelSmoothing > 0) loss = (1 - o.labelSmoothing) * loss - o.labelSmoothing * logProbs.mean(-1);
  at::Tensor count = mask.sum().to(logits.scalar_type());
  return loss.masked_fill(mask.logical_not(), 0).sum() / count.clamp_min(1);
}

}  // namespace losses
}  // namespace nn
}  // namespace radkit
