// Device dispatch, checks and the autograd function of maxSimilarity.
#include <torch/csrc/autograd/custom_function.h>

#include "max_similarity.h"

#include "../../core/autocast.h"
#include "../../core/checks.h"

namespace radkit {
namespace ops {
namespace {

void checkArgs(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask, const at::Tensor& textMask) {
  TORCH_CHECK(image.dim() == 3, "image must be [Bi, N, D], got ", image.sizes());
  TORCH_CHECK(text.dim() == 3, "text must be [Bt, K, D], got ", text.sizes());
  TORCH_CHECK(image.size(2) == text.size(2), "image and text must share D");
  TORCH_CHECK(image.scalar_type() == text.scalar_type(), "image and text must share a dtype");
  TORCH_CHECK(image.device() == text.device(), "image and text must be on one device");
  TORCH_CHECK(at::isFloatingType(image.scalar_type()), "image must be floating point");
  if (image.device().is_cpu())
    TORCH_CHECK(image.scalar_type() == at::kFloat || image.scalar_type() == at::kDouble,
                "on the CPU image must be float32 or float64");
  if (imageMask.defined())
    TORCH_CHECK(imageMask.dim() == 2 && imageMask.size(0) == image.size(0) && imageMask.size(1) == image.size(1),
                "imageMask must be [Bi, N]");
  if (textMask.defined())
    TORCH_CHECK(textMask.dim() == 2 && textMask.size(0) == text.size(0) && textMask.size(1) == text.size(1),
                "textMask must be [Bt, K]");
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

struct MaxSimilarityFunction : public torch::autograd::Function<MaxSimilarityFunction> {
  // Masks travel as optionals: they are not differentiable inputs (and may be absent).
  static tensor_list forward(AutogradContext* ctx, const at::Tensor& image, const at::Tensor& text,
                             const c10::optional<at::Tensor>& imageMaskOpt, const c10::optional<at::Tensor>& textMaskOpt) {
    const at::Tensor imageMask = imageMaskOpt.has_value() ? *imageMaskOpt : at::Tensor();
    const at::Tensor textMask = textMaskOpt.has_value() ? *textMaskOpt : at::Tensor();
    MaxSimilarityResult r = max_similarity_forward(image, text, imageMask, textMask);
    ctx->save_for_backward({image, text, r.imageToTextArgmax, r.textToImageArgmax});
    ctx->saved_data["imageMask"] = imageMask;
    ctx->saved_data["textMask"] = textMask;
    ctx->mark_non_differentiable({r.imageToTextArgmax, r.textToImageArgmax});
    return {r.imageToText, r.textToImage, r.imageToTextArgmax, r.textToImageArgmax};
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto s = ctx->get_saved_variables();
    at::Tensor im = ctx->saved_data["imageMask"].toTensor();
    at::Tensor tm = ctx->saved_data["textMask"].toTensor();
    auto [gi, gt] = max_similarity_backward(grads[0], grads[1], s[0], s[1], im, tm, s[2], s[3],
                                            ctx->needs_input_grad(0), ctx->needs_input_grad(1));
    return {gi, gt, at::Tensor(), at::Tensor()};
  }
};

}  // namespace

namespace {

void checkMask(const at::Tensor& m, const char* name, const at::Tensor& ref, const char* refName, const char* dims) {
  if (!m.defined()) return;
  if (m.scalar_type() != at::kBool) argError("ERR_DTYPE", name, " must be a bool tensor, got ", dtypeName(m.scalar_type()));
  if (m.dim() != 2 || m.size(0) != ref.size(0) || m.size(1) != ref.size(1))
    argError("ERR_SHAPE", name, " must have shape ", dims, " = [", ref.size(0), ", ", ref.size(1), "] to match ", refName,
             ", got ", shapeString(m.sizes()));
  checkSameDevice(m, name, ref, refName);
}

}  // namespace

void checkMaxSimilarityArgs(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                            const at::Tensor& textMask, const char* fn) {
  if (image.dim() != 3) argError("ERR_SHAPE", "image must have rank 3 [Bi, N, D], got shape ", shapeString(image.sizes()));
  if (text.dim() != 3) argError("ERR_SHAPE", "text must have rank 3 [Bt, K, D], got shape ", shapeString(text.sizes()));
  if (!isOpDtype(image))
    argError("ERR_DTYPE", "image must be float32 or float64 (CUDA also float16/bfloat16), got ",
             dtypeName(image.scalar_type()), " on ", deviceName(image.device()));
  checkSameDevice(text, "text", image, "image");
  checkSameDtype(text, "text", image, "image");
  if (text.size(2) != image.size(2))
    argError("ERR_SHAPE", "text must have the embedding size D of image (", image.size(2), "), got shape ",
             shapeString(text.sizes()));
  checkMask(imageMask, "options.imageMask", image, "image", "[Bi, N]");
  checkMask(textMask, "options.textMask", text, "text", "[Bt, K]");
  checkAllocation({image.size(0), text.size(0), image.size(1) + text.size(1)}, at::kLong, fn);
  if (image.numel() > 0 && !at::isfinite(image).all().item<bool>())
    argError("ERR_NOT_FINITE", "image must be finite (padded positions may hold finite garbage), got a non-finite value");
  if (text.numel() > 0 && !at::isfinite(text).all().item<bool>())
    argError("ERR_NOT_FINITE", "text must be finite (padded positions may hold finite garbage), got a non-finite value");
}

namespace detail {
at::Tensor realCounts(const at::Tensor& mask, int64_t batch, int64_t len, const at::Device& device) {
  if (!mask.defined()) return at::full({batch}, static_cast<double>(len), at::TensorOptions().dtype(at::kDouble).device(device));
  return mask.to(at::kBool).sum(1).to(at::kDouble);
}
}  // namespace detail

MaxSimilarityResult max_similarity_forward(const at::Tensor& image, const at::Tensor& text, const at::Tensor& imageMask,
                                           const at::Tensor& textMask) {
  checkArgs(image, text, imageMask, textMask);
#ifdef RADKIT_WITH_CUDA
  if (image.is_cuda()) return detail::max_similarity_forward_cuda(image, text, imageMask, textMask);
#endif
  TORCH_CHECK(image.device().is_cpu(), "maxSimilarity: unsupported device ", image.device());
  return detail::max_similarity_forward_cpu(image, text, imageMask, textMask);
}

std::tuple<at::Tensor, at::Tensor> max_similarity_backward(const at::Tensor& grad_i2t, const at::Tensor& grad_t2i,
                                                           const at::Tensor& image, const at::Tensor& text,
                                                           const at::Tensor& imageMask, const at::Tensor& textMask,
                                                           const at::Tensor& argN2K, const at::Tensor& argK2N,
                                                           bool need_image, bool need_text) {
  checkArgs(image, text, imageMask, textMask);
  const int64_t Bi = image.size(0), Bt = text.size(0);
  // c1[i, j] = dL/d imageToText[i, j] / N_i, c2[i, j] = dL/d textToImage[i, j] / K_j (0 for empty sets).
  auto dopt = image.options().dtype(at::kDouble);
  at::Tensor ni = detail::realCounts(imageMask, Bi, image.size(1), image.device()).view({Bi, 1});
  at::Tensor kj = detail::realCounts(textMask, Bt, text.size(1), image.device()).view({1, Bt});
  at::Tensor valid = (ni > 0) & (kj > 0);
  at::Tensor g1 = grad_i2t.defined() ? grad_i2t.to(at::kDouble) : at::zeros({Bi, Bt}, dopt);
  at::Tensor g2 = grad_t2i.defined() ? grad_t2i.to(at::kDouble) : at::zeros({Bi, Bt}, dopt);
  at::Tensor c1 = at::where(valid, g1 / ni.clamp_min(1), at::zeros_like(g1));
  at::Tensor c2 = at::where(valid, g2 / kj.clamp_min(1), at::zeros_like(g2));
  at::ScalarType ct = image.scalar_type() == at::kDouble ? at::kDouble : at::kFloat;
  c1 = c1.to(ct).contiguous();
  c2 = c2.to(ct).contiguous();
#ifdef RADKIT_WITH_CUDA
  if (image.is_cuda())
    return detail::max_similarity_backward_cuda(c1, c2, image, text, argN2K, argK2N, need_image, need_text);
#endif
  return detail::max_similarity_backward_cpu(c1, c2, image, text, argN2K, argK2N, need_image, need_text);
}

MaxSimilarityResult max_similarity(const at::Tensor& imageIn, const at::Tensor& textIn, const at::Tensor& imageMask,
                                   const at::Tensor& textMask) {
  const std::vector<at::Tensor> in = autocastOpInputs({imageIn, textIn});  // one dtype under autocast
  const at::Tensor &image = in[0], &text = in[1];
  c10::optional<at::Tensor> im, tm;
  if (imageMask.defined()) im = imageMask;
  if (textMask.defined()) tm = textMask;
  auto out = MaxSimilarityFunction::apply(image, text, im, tm);
  return {out[0], out[1], out[2], out[3]};
}

}  // namespace ops
}  // namespace radkit
