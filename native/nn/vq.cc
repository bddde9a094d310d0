#include "vq.h"

#include <ATen/ATen.h>

#include <cmath>
#include <string>

#include "../core/errors.h"

namespace radkit {
namespace nn {
namespace {

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t k, int64_t stride, int64_t pad, bool bias = true) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(pad).bias(bias));
}
torch::nn::GroupNorm groupNorm(int64_t groups, int64_t c) { return torch::nn::GroupNorm(torch::nn::GroupNormOptions(groups, c).eps(1e-6).affine(true)); }
at::Tensor swish(const at::Tensor& x) { return x * at::sigmoid(x); }

}  // namespace

void validateVqConfig(const VqConfig& c) {
  auto bad = [](const char* field, auto v, const char* want) { argError("ERR_INVALID_ARG", "config.", field, " ", want, ", got ", v); };
  if (c.inChannels != 1 && c.inChannels != 3) bad("inChannels", c.inChannels, "must be 1 or 3");
  if (c.outChannels != 1 && c.outChannels != 3) bad("outChannels", c.outChannels, "must be 1 or 3");
  if (c.chMult.empty() || c.chMult.size() > 8) bad("chMult", c.chMult.size(), "needs 1 to 8 levels");
  if (c.normGroups < 1) bad("normGroups", c.normGroups, "must be >= 1");
  for (int64_t m : c.chMult)
    if (m < 1 || (c.ch * m) % c.normGroups != 0) argError("ERR_INVALID_ARG", "config.ch x chMult entries must be positive multiples of normGroups (", c.normGroups, "), got ch ", c.ch, " x ", m);
  if (c.ch < 1 || c.ch % c.normGroups != 0) bad("ch", c.ch, "must be a positive multiple of normGroups");
  if (c.numResBlocks < 1 || c.numResBlocks > 16) bad("numResBlocks", c.numResBlocks, "must be in [1, 16]");
  if (c.zChannels < 1) bad("zChannels", c.zChannels, "must be >= 1");
  if (c.embedDim < 1) bad("embedDim", c.embedDim, "must be >= 1");
  if (c.nEmbed < 2) bad("nEmbed", c.nEmbed, "must be >= 2");
  const int64_t f = int64_t{1} << (c.chMult.size() - 1);
  if (c.resolution < f || c.resolution % f != 0) argError("ERR_INVALID_ARG", "config.resolution (", c.resolution, ") must be a multiple of the downsampling factor ", f);
  if (!(c.dropout >= 0 && c.dropout < 1)) bad("dropout", c.dropout, "must be in [0, 1)");
}

// ---------------------------------------------------------------- blocks

VqResnetBlockImpl::VqResnetBlockImpl(int64_t in, int64_t out, int64_t groups, double dropout) : dropout(dropout) {
  norm1 = register_module("norm1", groupNorm(groups, in));
  conv1 = register_module("conv1", conv(in, out, 3, 1, 1));
  norm2 = register_module("norm2", groupNorm(groups, out));
  conv2 = register_module("conv2", conv(out, out, 3, 1, 1));
  if (in != out) ninShortcut = register_module("nin_shortcut", conv(in, out, 1, 1, 0));
}

at::Tensor VqResnetBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = conv1->forward(swish(norm1->forward(x)));
  h = swish(norm2->forward(h));
  if (dropout > 0) h = at::dropout(h, dropout, is_training());
  h = conv2->forward(h);
  return (ninShortcut ? ninShortcut->forward(x) : x) + h;
}

VqAttnBlockImpl::VqAttnBlockImpl(int64_t c, int64_t groups) {
  norm = register_module("norm", groupNorm(groups, c));
  q = register_module("q", conv(c, c, 1, 1, 0));
  k = register_module("k", conv(c, c, 1, 1, 0));
  v = register_module("v", conv(c, c, 1, 1, 0));
  projOut = register_module("proj_out", conv(c, c, 1, 1, 0));
}

at::Tensor VqAttnBlockImpl::forward(const at::Tensor& x) {
  at::Tensor h = norm->forward(x);
  const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor qq = q->forward(h).reshape({B, C, H * W}).transpose(1, 2);  // [B, HW, C]
  at::Tensor kk = k->forward(h).reshape({B, C, H * W});                  // [B, C, HW]
  at::Tensor vv = v->forward(h).reshape({B, C, H * W});
  at::Tensor w = at::softmax(at::bmm(qq, kk) * (1.0 / std::sqrt(static_cast<double>(C))), 2);  // [B, HWq, HWk]
  at::Tensor o = at::bmm(vv, w.transpose(1, 2)).reshape({B, C, H, W});
  return x + projOut->forward(o);
}

VqLevelImpl::VqLevelImpl(const std::vector<std::pair<int64_t, int64_t>>& spec, bool attention, int64_t resample, int64_t groups, double dropout) : resample(resample) {
  auto blockList = register_module("block", torch::nn::ModuleList());
  auto attnList = register_module("attn", torch::nn::ModuleList());
  for (auto [in, out] : spec) {
    blocks.push_back(VqResnetBlock(in, out, groups, dropout));
    blockList->push_back(blocks.back());
    if (attention) {
      attns.push_back(VqAttnBlock(out, groups));
      attnList->push_back(attns.back());
    }
  }
  const int64_t c = spec.back().second;
  if (resample != 0) {
    auto holder = std::make_shared<torch::nn::Module>();
    resampleConv = holder->register_module("conv", conv(c, c, 3, resample < 0 ? 2 : 1, resample < 0 ? 0 : 1));
    register_module(resample < 0 ? "downsample" : "upsample", holder);
  }
}

at::Tensor VqLevelImpl::forward(at::Tensor h) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    h = blocks[i]->forward(h);
    if (!attns.empty()) h = attns[i]->forward(h);
  }
  if (resample < 0) h = resampleConv->forward(at::constant_pad_nd(h, {0, 1, 0, 1}, 0));
  if (resample > 0) h = resampleConv->forward(at::upsample_nearest2d(h, {h.size(2) * 2, h.size(3) * 2}));
  return h;
}

VqMidImpl::VqMidImpl(int64_t c, int64_t groups, double dropout) {
  block1 = register_module("block_1", VqResnetBlock(c, c, groups, dropout));
  attn1 = register_module("attn_1", VqAttnBlock(c, groups));
  block2 = register_module("block_2", VqResnetBlock(c, c, groups, dropout));
}

at::Tensor VqMidImpl::forward(const at::Tensor& x) { return block2->forward(attn1->forward(block1->forward(x))); }

namespace {
bool attentionAt(const VqConfig& c, int64_t res) {
  for (int64_t r : c.attnResolutions)
    if (r == res) return true;
  return false;
}
}  // namespace

VqEncoderImpl::VqEncoderImpl(const VqConfig& c) {
  convIn = register_module("conv_in", conv(c.inChannels, c.ch, 3, 1, 1));
  auto down = register_module("down", torch::nn::ModuleList());
  const int64_t L = static_cast<int64_t>(c.chMult.size());
  int64_t res = c.resolution, blockIn = c.ch;
  for (int64_t l = 0; l < L; ++l) {
    const int64_t blockOut = c.ch * c.chMult[l];
    std::vector<std::pair<int64_t, int64_t>> spec;
    for (int64_t b = 0; b < c.numResBlocks; ++b) {
      spec.emplace_back(blockIn, blockOut);
      blockIn = blockOut;
    }
    levels.push_back(VqLevel(spec, attentionAt(c, res), l != L - 1 ? -1 : 0, c.normGroups, c.dropout));
    down->push_back(levels.back());
    if (l != L - 1) res /= 2;
  }
  mid = register_module("mid", VqMid(blockIn, c.normGroups, c.dropout));
  normOut = register_module("norm_out", groupNorm(c.normGroups, blockIn));
  convOut = register_module("conv_out", conv(blockIn, c.zChannels, 3, 1, 1));
}

at::Tensor VqEncoderImpl::forward(const at::Tensor& x) {
  at::Tensor h = convIn->forward(x);
  for (auto& l : levels) h = l->forward(h);
  h = mid->forward(h);
  return convOut->forward(swish(normOut->forward(h)));
}

VqDecoderImpl::VqDecoderImpl(const VqConfig& c) {
  const int64_t L = static_cast<int64_t>(c.chMult.size());
  int64_t blockIn = c.ch * c.chMult[L - 1];
  int64_t res = c.resolution >> (L - 1);
  convIn = register_module("conv_in", conv(c.zChannels, blockIn, 3, 1, 1));
  mid = register_module("mid", VqMid(blockIn, c.normGroups, c.dropout));
  levels.resize(L, nullptr);
  for (int64_t l = L - 1; l >= 0; --l) {
    const int64_t blockOut = c.ch * c.chMult[l];
    std::vector<std::pair<int64_t, int64_t>> spec;
    for (int64_t b = 0; b < c.numResBlocks + 1; ++b) {
      spec.emplace_back(blockIn, blockOut);
      blockIn = blockOut;
    }
    levels[l] = VqLevel(spec, attentionAt(c, res), l != 0 ? 1 : 0, c.normGroups, c.dropout);
    if (l != 0) res *= 2;
  }
  auto up = register_module("up", torch::nn::ModuleList());
  for (auto& l : levels) up->push_back(l);
  normOut = register_module("norm_out", groupNorm(c.normGroups, blockIn));
  convOut = register_module("conv_out", conv(blockIn, c.outChannels, 3, 1, 1));
}

at::Tensor VqDecoderImpl::forward(const at::Tensor& z) {
  at::Tensor h = mid->forward(convIn->forward(z));
  for (int64_t l = static_cast<int64_t>(levels.size()) - 1; l >= 0; --l) h = levels[l]->forward(h);
  return convOut->forward(swish(normOut->forward(h)));
}

// ---------------------------------------------------------------- quantiser

Quantized quantize(const at::Tensor& z, const at::Tensor& codebook) {
  if (z.dim() != 2 || codebook.dim() != 2 || z.size(1) != codebook.size(1))
    argError("ERR_SHAPE", "quantize: z must be [N, D] and the codebook [K, D], got ", z.sizes(), " and ", codebook.sizes());
  Quantized q;
  {
    at::NoGradGuard ng;
    at::Tensor d = z.pow(2).sum(1, true) - 2 * at::matmul(z, codebook.t()) + codebook.pow(2).sum(1).unsqueeze(0);
    q.codes = d.argmin(1);
  }
  at::Tensor e = codebook.index_select(0, q.codes);
  q.codebookLoss = (z.detach() - e).pow(2).mean();
  q.commitLoss = (z - e.detach()).pow(2).mean();
  q.zq = z + (e - z).detach();
  return q;
}

int64_t emaUpdate(at::Tensor& clusterSize, at::Tensor& embedAvg, at::Tensor& codebook, const at::Tensor& z, const at::Tensor& codes, double decay, double eps,
                  double deadThreshold, at::Generator gen) {
  at::NoGradGuard ng;
  const int64_t K = codebook.size(0);
  at::Tensor zf = z.detach().to(embedAvg.scalar_type());
  at::Tensor counts = at::zeros({K}, embedAvg.options()).index_add_(0, codes, at::ones({codes.size(0)}, embedAvg.options()));
  at::Tensor sums = at::zeros_like(embedAvg).index_add_(0, codes, zf);
  clusterSize.mul_(decay).add_(counts, 1 - decay);
  embedAvg.mul_(decay).add_(sums, 1 - decay);
  int64_t restarted = 0;
  if (deadThreshold > 0 && zf.size(0) > 0) {
    at::Tensor dead = clusterSize.lt(deadThreshold).nonzero().flatten();
    restarted = dead.numel();
    if (restarted) {
      at::Tensor pick = at::randint(zf.size(0), {restarted}, gen, at::TensorOptions().dtype(at::kLong));
      embedAvg.index_copy_(0, dead, zf.index_select(0, pick));
      clusterSize.index_fill_(0, dead, 1.0);
    }
  }
  const at::Tensor total = clusterSize.sum();
  at::Tensor smoothed = (clusterSize + eps) / (total + static_cast<double>(K) * eps) * total;
  codebook.copy_(embedAvg / smoothed.unsqueeze(1));
  return restarted;
}

double codePerplexity(const at::Tensor& codes, int64_t K) {
  at::Tensor p = at::bincount(codes.flatten(), {}, K).to(at::kDouble);
  p = p / p.sum().clamp_min(1);
  return std::exp(-(p * at::log(p.clamp_min(1e-30))).sum().item<double>());
}

// ---------------------------------------------------------------- model

VqModelImpl::VqModelImpl(const VqConfig& cfg, bool ema) : c(cfg), ema(ema) {
  validateVqConfig(c);
  encoder = register_module("encoder", VqEncoder(c));
  decoder = register_module("decoder", VqDecoder(c));
  quantConv = register_module("quant_conv", conv(c.zChannels, c.embedDim, 1, 1, 0));
  postQuantConv = register_module("post_quant_conv", conv(c.embedDim, c.zChannels, 1, 1, 0));
  quantize = std::make_shared<torch::nn::Module>();
  embedding = quantize->register_module("embedding", torch::nn::Embedding(c.nEmbed, c.embedDim));
  {
    at::NoGradGuard ng;
    embedding->weight.uniform_(-1.0 / c.nEmbed, 1.0 / c.nEmbed);  // taming's initialisation
  }
  if (ema) {
    embedding->weight.set_requires_grad(false);
    clusterSize = quantize->register_buffer("cluster_size", at::zeros({c.nEmbed}));
    embedAvg = quantize->register_buffer("embed_avg", embedding->weight.detach().clone());
    at::NoGradGuard ng;
    clusterSize.fill_(1.0);  // every code starts as if used once (no restart before the data is seen)
  }
  register_module("quantize", quantize);
}

at::Tensor VqModelImpl::encodeLatents(const at::Tensor& x) {
  at::Tensor in = c.inChannels == 3 ? x.expand({x.size(0), 3, x.size(2), x.size(3)}) : x;
  return quantConv->forward(encoder->forward(in));
}

at::Tensor VqModelImpl::decodeLatents(const at::Tensor& zq) {
  at::Tensor out = decoder->forward(postQuantConv->forward(zq));
  return c.outChannels == 3 ? out.mean(1, true) : out;
}

at::Tensor VqModelImpl::decodeCodes(const at::Tensor& codes) {
  at::Tensor e = embedding->weight.index_select(0, codes.flatten());  // [B*h*w, D]
  at::Tensor zq = e.view({codes.size(0), codes.size(1), codes.size(2), c.embedDim}).permute({0, 3, 1, 2}).contiguous();
  return decodeLatents(zq);
}

// ---------------------------------------------------------------- PatchGAN

PatchDiscriminatorImpl::PatchDiscriminatorImpl(int64_t inChannels, int64_t ndf, int64_t nLayers) {
  if (nLayers < 1 || nLayers > 6) argError("ERR_INVALID_ARG", "config.discLayers must be in [1, 6], got ", nLayers);
  if (ndf < 1) argError("ERR_INVALID_ARG", "config.discChannels must be >= 1, got ", ndf);
  auto main = std::make_shared<torch::nn::Module>();
  int index = 0;
  convs.push_back(main->register_module(std::to_string(index), conv(inChannels, ndf, 4, 2, 1)));
  index += 2;  // LeakyReLU
  int64_t mult = 1;
  for (int64_t n = 1; n <= nLayers; ++n) {
    const int64_t prev = mult;
    mult = std::min<int64_t>(int64_t{1} << n, 8);
    convs.push_back(main->register_module(std::to_string(index), conv(ndf * prev, ndf * mult, 4, n < nLayers ? 2 : 1, 1, false)));
    norms.push_back(main->register_module(std::to_string(index + 1), torch::nn::BatchNorm2d(ndf * mult)));
    index += 3;
  }
  convs.push_back(main->register_module(std::to_string(index), conv(ndf * mult, 1, 4, 1, 1)));
  register_module("main", main);
}

at::Tensor PatchDiscriminatorImpl::forward(const at::Tensor& x, bool frozen) {
  auto applyConv = [&](torch::nn::Conv2d& m, const at::Tensor& h) {
    if (!frozen) return m->forward(h);
    at::Tensor b = m->bias.defined() ? m->bias.detach() : at::Tensor();
    return at::conv2d(h, m->weight.detach(), b, at::IntArrayRef(*m->options.stride()), at::IntArrayRef({1, 1}));  // every layer pads 1
  };
  at::Tensor h = at::leaky_relu(applyConv(convs[0], x), 0.2);
  for (size_t i = 0; i < norms.size(); ++i) {
    h = applyConv(convs[i + 1], h);
    auto& bn = norms[i];
    if (!frozen) h = bn->forward(h);
    else if (is_training()) h = at::batch_norm(h, bn->weight.detach(), bn->bias.detach(), {}, {}, true, 0.1, 1e-5, false);
    else h = at::batch_norm(h, bn->weight.detach(), bn->bias.detach(), bn->running_mean, bn->running_var, false, 0.1, 1e-5, false);
    h = at::leaky_relu(h, 0.2);
  }
  return applyConv(convs.back(), h);
}

}  // namespace nn
}  // namespace radkit
