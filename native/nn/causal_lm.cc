// Causal language models (LLaMA, GPT-NeoX): see causal_lm.h.
#include "causal_lm.h"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include "../core/checks.h"
#include "../core/errors.h"
#include "transformer.h"

namespace radkit {
namespace nn {

namespace {

bool isNeox(const CausalLMConfig& c) { return c.arch == "gpt_neox"; }

std::string lastPart(const std::string& name) {
  const auto dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

bool endsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// cos/sin [B,1,n,rd] for positions [B,n].
std::pair<at::Tensor, at::Tensor> rotaryTables(const CausalLMConfig& c, const at::Tensor& positions, at::ScalarType dtype) {
  const int64_t rd = c.rotaryDim;
  at::Tensor exponent = at::arange(0, rd, 2, at::TensorOptions().dtype(at::kDouble)) / static_cast<double>(rd);
  at::Tensor invFreq = at::pow(c.ropeTheta, exponent).reciprocal().to(at::kFloat).to(positions.device());
  at::Tensor angles = positions.to(at::kFloat).unsqueeze(-1) * invFreq;  // [B,n,rd/2]
  at::Tensor emb = at::cat({angles, angles}, -1).unsqueeze(1);          // [B,1,n,rd]
  return {emb.cos().to(dtype), emb.sin().to(dtype)};
}

// Rotate-half rotary embedding of the first rd dims of x [B,H,n,hd].
at::Tensor applyRotary(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, int64_t rd) {
  const int64_t hd = x.size(-1);
  at::Tensor rot = x.narrow(-1, 0, rd);
  at::Tensor x1 = rot.narrow(-1, 0, rd / 2), x2 = rot.narrow(-1, rd / 2, rd / 2);
  at::Tensor out = rot * cos + at::cat({-x2, x1}, -1) * sin;
  return rd == hd ? out : at::cat({out, x.narrow(-1, rd, hd - rd)}, -1);
}

at::Tensor activate(const std::string& act, const at::Tensor& x) {
  if (act == "silu") return at::silu(x);
  if (act == "gelu") return at::gelu(x);
  if (act == "gelu_tanh") return at::gelu(x, "tanh");
  return at::relu(x);
}

}  // namespace

void validateConfig(const CausalLMConfig& c) {
  auto need = [](bool ok, const char* field, const std::string& what) {
    if (!ok) argError("ERR_INVALID_ARG", "config.", field, " ", what);
  };
  need(c.arch == "llama" || c.arch == "gpt_neox", "arch", "must be 'llama' or 'gpt_neox', got '" + c.arch + "'");
  need(c.vocabSize >= 2, "vocabSize", "must be >= 2");
  need(c.hiddenSize >= 1 && c.numLayers >= 1 && c.numHeads >= 1 && c.intermediateSize >= 1, "hiddenSize", "/numLayers/numHeads/intermediateSize must be >= 1");
  need(c.numKvHeads >= 1 && c.numHeads % c.numKvHeads == 0, "numKvHeads",
       "must divide numHeads (" + std::to_string(c.numHeads) + "), got " + std::to_string(c.numKvHeads));
  need(!isNeox(c) || c.numKvHeads == c.numHeads, "numKvHeads", "must equal numHeads for gpt_neox");
  need(c.headDim >= 2, "headDim", "must be >= 2");
  need(!isNeox(c) || c.headDim * c.numHeads == c.hiddenSize, "headDim", "x numHeads must equal hiddenSize for gpt_neox");
  need(c.rotaryDim >= 0 && c.rotaryDim <= c.headDim && c.rotaryDim % 2 == 0, "rotaryDim",
       "must be even and in [0, headDim], got " + std::to_string(c.rotaryDim));
  need(c.maxPositions >= 1, "maxPositions", "must be >= 1");
  need(c.ropeTheta > 0, "ropeTheta", "must be > 0");
  need(c.normEps > 0, "normEps", "must be > 0");
  need(c.activation == "silu" || c.activation == "gelu" || c.activation == "gelu_tanh" || c.activation == "relu", "activation",
       "must be silu, gelu, gelu_tanh or relu, got '" + c.activation + "'");
  for (int64_t id : {c.bosId, c.eosId, c.padId}) need(id >= -1 && id < c.vocabSize, "bosId", "/eosId/padId must be -1 or a token id below vocabSize");
}

// ---- modules
WeightOnlyImpl::WeightOnlyImpl(at::IntArrayRef shape, const at::TensorOptions& opts) { weight = register_parameter("weight", at::empty(shape, opts)); }

CausalLinearImpl::CausalLinearImpl(int64_t in, int64_t out, bool withBias, const at::TensorOptions& opts) : in(in), out(out) {
  weight = register_parameter("weight", at::empty({out, in}, opts));
  if (withBias) bias = register_parameter("bias", at::empty({out}, opts));
}

at::Tensor CausalLinearImpl::forward(const at::Tensor& x) {
  at::Tensor y = at::linear(x, weight, bias);
  if (!loraA) return y;
  at::Tensor xin = x.to(at::kFloat);
  if (dropout > 0 && is_training()) xin = at::dropout(xin, dropout, true);
  at::Tensor delta = at::linear(at::linear(xin, loraA->weight), loraB->weight).mul(scaling);
  return y + delta.to(y.scalar_type());
}

void CausalLinearImpl::addLora(const LoraOptions& o, uint64_t seed) {
  at::TensorOptions f32 = weight.options().dtype(at::kFloat);
  loraA = register_module("lora_A", WeightOnly(at::IntArrayRef{o.rank, in}, f32));
  loraB = register_module("lora_B", WeightOnly(at::IntArrayRef{out, o.rank}, f32));
  at::NoGradGuard g;
  // PEFT: A ~ kaiming_uniform(a = sqrt(5)) = U(-1/sqrt(in), 1/sqrt(in)); B = 0.
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const double bound = 1.0 / std::sqrt(static_cast<double>(in));
  loraA->weight.copy_(at::empty({o.rank, in}, at::kFloat).uniform_(-bound, bound, gen));
  loraB->weight.zero_();
  scaling = o.alpha / static_cast<double>(o.rank);
  dropout = o.dropout;
}

void CausalLinearImpl::mergeLora() {
  if (!loraA) return;
  {
    at::NoGradGuard g;
    at::Tensor delta = at::matmul(loraB->weight.to(at::kFloat), loraA->weight.to(at::kFloat)).mul_(scaling);
    weight.copy_(weight.to(at::kFloat).add_(delta));
  }
  unregister_module("lora_A");
  unregister_module("lora_B");
  loraA = nullptr;
  loraB = nullptr;
  scaling = 0;
  dropout = 0;
}

CausalNormImpl::CausalNormImpl(int64_t dim, double eps, bool rms, const at::TensorOptions& opts) : eps(eps), rms(rms) {
  weight = register_parameter("weight", at::empty({dim}, opts));
  if (!rms) bias = register_parameter("bias", at::empty({dim}, opts));
}

at::Tensor CausalNormImpl::forward(const at::Tensor& x) {
  at::Tensor xf = x.to(at::kFloat);
  if (rms) {
    at::Tensor y = xf * at::rsqrt(xf.pow(2).mean(-1, true) + eps);
    return weight * y.to(x.scalar_type());
  }
  return at::layer_norm(xf, {xf.size(-1)}, weight.to(at::kFloat), bias.to(at::kFloat), eps).to(x.scalar_type());
}

CausalAttentionImpl::CausalAttentionImpl(const CausalLMConfig& cfg, const at::TensorOptions& opts) : c(cfg) {
  const int64_t d = c.hiddenSize, hd = c.headDim;
  if (isNeox(c)) {
    qkv = register_module("query_key_value", CausalLinear(d, 3 * c.numHeads * hd, c.attentionBias, opts));
    o = register_module("dense", CausalLinear(c.numHeads * hd, d, c.attentionBias, opts));
  } else {
    q = register_module("q_proj", CausalLinear(d, c.numHeads * hd, c.attentionBias, opts));
    k = register_module("k_proj", CausalLinear(d, c.numKvHeads * hd, c.attentionBias, opts));
    v = register_module("v_proj", CausalLinear(d, c.numKvHeads * hd, c.attentionBias, opts));
    o = register_module("o_proj", CausalLinear(c.numHeads * hd, d, c.attentionBias, opts));
  }
}

at::Tensor CausalAttentionImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, KVCache* cache,
                                        int64_t pos) {
  const int64_t b = x.size(0), n = x.size(1), h = c.numHeads, kvh = c.numKvHeads, hd = c.headDim;
  at::Tensor qh, kh, vh;
  if (isNeox(c)) {
    at::Tensor fused = qkv->forward(x).view({b, n, h, 3 * hd});  // per head: [q | k | v]
    qh = fused.narrow(-1, 0, hd).transpose(1, 2);
    kh = fused.narrow(-1, hd, hd).transpose(1, 2);
    vh = fused.narrow(-1, 2 * hd, hd).transpose(1, 2);
  } else {
    qh = q->forward(x).view({b, n, h, hd}).transpose(1, 2);
    kh = k->forward(x).view({b, n, kvh, hd}).transpose(1, 2);
    vh = v->forward(x).view({b, n, kvh, hd}).transpose(1, 2);
  }
  if (c.rotaryDim > 0) {
    qh = applyRotary(qh, cos, sin, c.rotaryDim);
    kh = applyRotary(kh, cos, sin, c.rotaryDim);
  }
  if (cache) {
    cache->k.narrow(2, pos, n).copy_(kh);
    cache->v.narrow(2, pos, n).copy_(vh);
    kh = cache->k.narrow(2, 0, pos + n);
    vh = cache->v.narrow(2, 0, pos + n);
  }
  const int64_t g = h / kvh, keys = kh.size(2);
  // Grouped-query attention without copying keys: the g query heads of one key head become g*n rows.
  at::Tensor qg = g == 1 ? qh : qh.reshape({b, kvh, g * n, hd});
  at::Tensor m = mask;
  if (g > 1 && m.defined()) m = m.unsqueeze(2).expand({m.size(0), 1, g, n, keys}).reshape({m.size(0), 1, g * n, keys});
  at::Tensor out = attention(qg, kh, vh, m, 0.0, false).reshape({b, h, n, hd});
  return o->forward(out.transpose(1, 2).reshape({b, n, h * hd}));
}

CausalMlpImpl::CausalMlpImpl(const CausalLMConfig& cfg, const at::TensorOptions& opts) : c(cfg) {
  const int64_t d = c.hiddenSize, f = c.intermediateSize;
  if (isNeox(c)) {
    up = register_module("dense_h_to_4h", CausalLinear(d, f, c.mlpBias, opts));
    down = register_module("dense_4h_to_h", CausalLinear(f, d, c.mlpBias, opts));
  } else {
    gate = register_module("gate_proj", CausalLinear(d, f, c.mlpBias, opts));
    up = register_module("up_proj", CausalLinear(d, f, c.mlpBias, opts));
    down = register_module("down_proj", CausalLinear(f, d, c.mlpBias, opts));
  }
}

at::Tensor CausalMlpImpl::forward(const at::Tensor& x) {
  if (gate) return down->forward(activate(c.activation, gate->forward(x)) * up->forward(x));
  return down->forward(activate(c.activation, up->forward(x)));
}

CausalBlockImpl::CausalBlockImpl(const CausalLMConfig& cfg, const at::TensorOptions& opts) : c(cfg) {
  const bool rms = !isNeox(c);
  norm1 = register_module("input_layernorm", CausalNorm(c.hiddenSize, c.normEps, rms, opts));
  attention = register_module(isNeox(c) ? "attention" : "self_attn", CausalAttention(c, opts));
  norm2 = register_module("post_attention_layernorm", CausalNorm(c.hiddenSize, c.normEps, rms, opts));
  mlp = register_module("mlp", CausalMlp(c, opts));
}

at::Tensor CausalBlockImpl::forward(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin, const at::Tensor& mask, KVCache* cache, int64_t pos) {
  at::Tensor a = attention->forward(norm1->forward(x), cos, sin, mask, cache, pos);
  if (isNeox(c) && c.parallelResidual) return mlp->forward(norm2->forward(x)) + a + x;
  at::Tensor h = x + a;
  return h + mlp->forward(norm2->forward(h));
}

CausalBackboneImpl::CausalBackboneImpl(const CausalLMConfig& cfg, const at::TensorOptions& opts) : c(cfg) {
  const bool neox = isNeox(c);
  embed = register_module(neox ? "embed_in" : "embed_tokens", WeightOnly(at::IntArrayRef{c.vocabSize, c.hiddenSize}, opts));
  layers = register_module("layers", torch::nn::ModuleList());
  for (int64_t i = 0; i < c.numLayers; ++i) {
    blocks.push_back(CausalBlock(c, opts));
    layers->push_back(blocks.back());
  }
  norm = register_module(neox ? "final_layer_norm" : "norm", CausalNorm(c.hiddenSize, c.normEps, !neox, opts));
}

CausalLMImpl::CausalLMImpl(CausalLMConfig cfg, const at::TensorOptions& opts)
    : config(std::move(cfg)), dtype(opts.dtype().toScalarType()), device(opts.device()) {
  validateConfig(config);
  const bool neox = isNeox(config);
  backbone = register_module(neox ? "gpt_neox" : "model", CausalBackbone(config, opts));
  if (!config.tieEmbeddings) head = register_module(neox ? "embed_out" : "lm_head", CausalLinear(config.hiddenSize, config.vocabSize, false, opts));
}

at::Tensor CausalLMImpl::embed(const at::Tensor& ids) { return at::embedding(backbone->embed->weight, ids); }

at::Tensor CausalLMImpl::hidden(const at::Tensor& x, const at::Tensor& positions, const at::Tensor& keyValid, std::vector<KVCache>* caches, int64_t pos) {
  const int64_t n = x.size(1), keys = pos + n;
  at::Tensor mask;
  if (keyValid.defined() || n > 1) {
    auto lopts = at::TensorOptions().dtype(at::kLong).device(x.device());
    at::Tensor keySlot = at::arange(keys, lopts).view({1, keys}), querySlot = at::arange(pos, keys, lopts).view({n, 1});
    mask = keySlot.le(querySlot).view({1, 1, n, keys});
    if (keyValid.defined()) mask = mask.logical_and(keyValid.view({keyValid.size(0), 1, 1, keys})).logical_or(keySlot.eq(querySlot).view({1, 1, n, keys}));
  }
  auto [cos, sin] = rotaryTables(config, positions, x.scalar_type());
  at::Tensor h = x;
  for (size_t i = 0; i < backbone->blocks.size(); ++i) h = backbone->blocks[i]->forward(h, cos, sin, mask, caches ? &(*caches)[i] : nullptr, pos);
  return backbone->norm->forward(h);
}

at::Tensor CausalLMImpl::project(const at::Tensor& h) {
  at::Tensor l = head ? head->forward(h) : at::linear(h, backbone->embed->weight);
  return l.to(at::kFloat);
}

at::Tensor CausalLMImpl::logits(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& prefix) {
  at::Tensor x = embed(ids);
  at::Tensor valid = mask;
  if (prefix.defined()) {
    x = at::cat({prefix.to(x.scalar_type()), x}, 1);
    if (valid.defined()) valid = at::cat({at::ones({prefix.size(0), prefix.size(1)}, mask.options()), mask}, 1);
  }
  const int64_t b = x.size(0), len = x.size(1);
  at::Tensor positions = valid.defined() ? positionsFromMask(valid) : at::arange(len, at::TensorOptions().dtype(at::kLong).device(x.device())).expand({b, len});
  return project(hidden(x, positions, valid, nullptr, 0));
}

at::Tensor CausalLMImpl::loss(const at::Tensor& ids, const at::Tensor& mask, const at::Tensor& prefix, const at::Tensor& lossMask) {
  at::Tensor l = logits(ids, mask, prefix);
  const int64_t p = prefix.defined() ? prefix.size(1) : 0, t = ids.size(1);
  at::Tensor sel = lossMask.to(at::kBool);
  if (mask.defined()) sel = sel.logical_and(mask);
  at::Tensor pred, target;
  if (p > 0) {
    pred = l.narrow(1, p - 1, t);
    target = ids;
  } else {
    if (t < 2) return l.sum() * 0;  // nothing can be predicted
    pred = l.narrow(1, 0, t - 1);
    target = ids.narrow(1, 1, t - 1);
    sel = sel.narrow(1, 1, t - 1);
  }
  at::Tensor nll = at::cross_entropy_loss(pred.reshape({-1, pred.size(-1)}), target.reshape({-1}), {}, at::Reduction::None).view(target.sizes());
  at::Tensor w = sel.to(nll.scalar_type());
  return (nll * w).sum() / w.sum().clamp_min(1.0);
}

std::vector<KVCache> CausalLMImpl::allocateCaches(int64_t rows, int64_t capacity) const {
  std::vector<KVCache> caches(config.numLayers);
  auto opts = at::TensorOptions().dtype(dtype).device(device);
  for (auto& c : caches) {
    c.k = at::empty({rows, config.numKvHeads, capacity, config.headDim}, opts);
    c.v = at::empty({rows, config.numKvHeads, capacity, config.headDim}, opts);
  }
  return caches;
}

void CausalLMImpl::initWeights(uint64_t seed) {
  at::NoGradGuard g;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters(true)) {
    at::Tensor& p = item.value();
    const std::string& name = item.key();
    if (name.find("lora_") != std::string::npos) continue;
    const bool isNorm = name.find("norm") != std::string::npos;
    if (p.dim() >= 2) p.copy_(at::empty(p.sizes(), at::kFloat).normal_(0.0, 0.02, gen));
    else if (isNorm && endsWith(name, "weight")) p.fill_(1.0);
    else p.zero_();
  }
}

std::vector<std::pair<std::string, at::Tensor>> CausalLMImpl::namedWeights() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& item : named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

void CausalLMImpl::loadFrom(const std::vector<std::shared_ptr<SafetensorsFile>>& files) {
  std::map<std::string, at::Tensor> params;
  for (auto& [name, p] : namedWeights())
    if (name.find(".lora_") == std::string::npos) params[name] = p;
  const bool neox = isNeox(config);
  const std::string headName = neox ? "embed_out.weight" : "lm_head.weight";
  auto ignorable = [&](const std::string& n) {
    return endsWith(n, ".rotary_emb.inv_freq") || (neox && (endsWith(n, ".attention.bias") || endsWith(n, ".attention.masked_bias"))) ||
           (config.tieEmbeddings && n == headName);
  };
  std::vector<std::string> unexpected, mismatched, duplicated, missing;
  std::map<std::string, std::pair<const SafetensorsFile*, const SafetensorsEntry*>> source;
  for (auto& f : files) {
    for (const auto& e : f->entries()) {
      if (ignorable(e.name)) continue;
      auto it = params.find(e.name);
      if (it == params.end()) {
        unexpected.push_back(e.name + " (" + f->path() + ")");
        continue;
      }
      if (source.count(e.name)) {
        duplicated.push_back(e.name + " (" + source[e.name].first->path() + " and " + f->path() + ")");
        continue;
      }
      if (it->second.sizes() != at::IntArrayRef(e.shape))
        mismatched.push_back(e.name + ": checkpoint " + shapeString(e.shape) + ", model " + shapeString(it->second.sizes()));
      if (!at::isFloatingType(e.dtype)) mismatched.push_back(e.name + ": dtype " + e.dtypeCode + " is not floating-point");
      source[e.name] = {f.get(), &e};
    }
  }
  for (auto& [name, p] : params)
    if (!source.count(name)) missing.push_back(name);
  if (!unexpected.empty() || !mismatched.empty() || !duplicated.empty() || !missing.empty()) {
    std::ostringstream os;
    os << "the checkpoint does not fit the " << config.arch << " model of this config:";
    auto list = [&](const char* what, const std::vector<std::string>& v) {
      if (v.empty()) return;
      os << "\n  " << what << " (" << v.size() << "):";
      for (size_t i = 0; i < v.size() && i < 20; ++i) os << "\n    " << v[i];
      if (v.size() > 20) os << "\n    ... and " << v.size() - 20 << " more";
    };
    list("missing tensors", missing);
    list("unexpected tensors", unexpected);
    list("shape or dtype mismatches", mismatched);
    list("tensors in more than one file", duplicated);
    argError("ERR_INVALID_ARG", os.str());
  }
  at::NoGradGuard g;
  for (auto& [name, src] : source) {
    at::Tensor p = params[name];
    src.first->copyInto(*src.second, p);
    src.first->release(*src.second);
  }
}

std::vector<std::pair<std::string, CausalLinear>> CausalLMImpl::linears() {
  std::vector<std::pair<std::string, CausalLinear>> out;
  for (auto& item : named_modules("", false)) {
    auto lin = std::dynamic_pointer_cast<CausalLinearImpl>(item.value());
    if (lin) out.emplace_back(item.key(), CausalLinear(lin));
  }
  return out;
}

std::vector<std::string> CausalLMImpl::addLora(const LoraOptions& o) {
  if (hasLora()) argError("ERR_INVALID_ARG", "this model already has LoRA adapters (merge them first)");
  if (o.rank < 1) argError("ERR_INVALID_ARG", "lora.rank must be >= 1, got ", o.rank);
  if (!(o.alpha > 0)) argError("ERR_INVALID_ARG", "lora.alpha must be > 0, got ", o.alpha);
  if (!(o.dropout >= 0 && o.dropout < 1)) argError("ERR_INVALID_ARG", "lora.dropout must be in [0, 1), got ", o.dropout);
  if (o.targets.empty()) argError("ERR_INVALID_ARG", "lora.targets must name at least one module (e.g. q_proj, v_proj)");
  auto lins = linears();
  std::vector<std::pair<std::string, CausalLinear>> chosen;
  std::set<std::string> available;
  for (auto& [name, lin] : lins) available.insert(lastPart(name));
  for (const auto& t : o.targets)
    if (!available.count(t)) {
      std::string names;
      for (auto& a : available) names += (names.empty() ? "" : ", ") + a;
      argError("ERR_INVALID_ARG", "lora.targets: no module named '", t, "' in this ", config.arch, " model (modules: ", names, ")");
    }
  for (auto& [name, lin] : lins)
    if (std::find(o.targets.begin(), o.targets.end(), lastPart(name)) != o.targets.end()) chosen.emplace_back(name, lin);
  std::set<std::string> trainOwners;
  for (auto& [name, p] : namedWeights()) {
    const auto dot = name.rfind('.');
    trainOwners.insert(lastPart(name.substr(0, dot)));
  }
  for (const auto& m : o.trainModules)
    if (!trainOwners.count(m)) argError("ERR_INVALID_ARG", "lora.trainModules: no module named '", m, "' in this ", config.arch, " model");
  for (auto& [name, p] : namedWeights()) {
    const std::string owner = lastPart(name.substr(0, name.rfind('.')));
    p.set_requires_grad(std::find(o.trainModules.begin(), o.trainModules.end(), owner) != o.trainModules.end());
  }
  std::vector<std::string> names;
  uint64_t k = 0;
  for (auto& [name, lin] : chosen) {
    lin->addLora(o, o.seed * 1000003ULL + k++);
    names.push_back(name);
  }
  loraModules_ = names;
  lora_ = o;
  return names;
}

void CausalLMImpl::mergeLora() {
  for (auto& [name, lin] : linears()) lin->mergeLora();
  loraModules_.clear();
  lora_ = LoraOptions();
  for (auto& item : named_parameters(true)) item.value().set_requires_grad(true);
}

std::vector<std::pair<std::string, at::Tensor>> CausalLMImpl::adapterWeights() {
  std::vector<std::pair<std::string, at::Tensor>> out;
  for (auto& [name, p] : namedWeights())
    if (name.find(".lora_") != std::string::npos || p.requires_grad()) out.emplace_back(name, p);
  return out;
}

std::vector<at::Tensor> CausalLMImpl::trainableParameters() {
  std::vector<at::Tensor> out;
  for (auto& item : named_parameters(true))
    if (item.value().requires_grad()) out.push_back(item.value());
  return out;
}

void CausalLMImpl::resizeVocab(int64_t n) {
  if (n < config.vocabSize) argError("ERR_INVALID_ARG", "the vocabulary can only grow: ", n, " < ", config.vocabSize);
  if (n == config.vocabSize) return;
  if (head && head->hasLora()) argError("ERR_INVALID_ARG", "resize the vocabulary before adding LoRA adapters to the output layer");
  checkAllocation({n, config.hiddenSize}, dtype, "resizeVocab");
  at::NoGradGuard g;
  auto grow = [&](at::Tensor& w) {
    at::Tensor mean = w.to(at::kFloat).mean(0, true).to(w.scalar_type());
    w.set_data(at::cat({w.detach(), mean.expand({n - w.size(0), w.size(1)})}, 0));
  };
  grow(backbone->embed->weight);
  if (head) {
    grow(head->weight);
    head->out = n;
  }
  config.vocabSize = n;
}

CausalLM createCausalLM(const CausalLMConfig& c, const at::TensorOptions& opts, uint64_t seed) {
  CausalLM m(c, opts);
  m->initWeights(seed);
  return m;
}

}  // namespace nn
}  // namespace radkit
