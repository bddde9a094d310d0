#include "distributed.h"

#include <torch/csrc/autograd/custom_function.h>
#include <torch/nn/modules/batchnorm.h>

#include <algorithm>
#include <cmath>

#include "../core/errors.h"

namespace radkit {
namespace nn {

namespace {

thread_local Distributed* current = nullptr;

Distributed& requireCurrent(const char* what) {
  if (!current) fail(ErrorKind::Native, "ERR_DISTRIBUTED", what, " ran outside the distributed training step that started it (no process group is current)");
  return *current;
}

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Equal shapes on every rank -> rows of every rank in rank order; backward sums over ranks.
struct AllGatherFunction : public torch::autograd::Function<AllGatherFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    Distributed& d = requireCurrent("all-gather");
    ctx->saved_data["rows"] = x.size(0);
    ctx->saved_data["rank"] = d.rank();
    return at::cat(d.allGather(x.contiguous()), 0);
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    Distributed& d = requireCurrent("the backward of an all-gather");
    const int64_t rows = ctx->saved_data["rows"].toInt(), rank = ctx->saved_data["rank"].toInt();
    std::vector<at::Tensor> g{grads[0].contiguous().clone()};
    d.allReduceSum(g);
    return {g[0].narrow(0, rank * rows, rows)};
  }
};

struct AllReduceFunction : public torch::autograd::Function<AllReduceFunction> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x) {
    std::vector<at::Tensor> v{x.contiguous().clone()};
    requireCurrent("all-reduce").allReduceSum(v);
    return v[0];
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    std::vector<at::Tensor> g{grads[0].contiguous().clone()};
    requireCurrent("the backward of an all-reduce").allReduceSum(g);
    return {g[0]};
  }
};

}  // namespace

Distributed* currentDistributed() { return current; }

DistributedScope::DistributedScope(Distributed* d) : previous_(current) { current = d; }
DistributedScope::~DistributedScope() { current = previous_; }

int64_t worldSize() { return current ? current->worldSize() : 1; }
int64_t worldRank() { return current ? current->rank() : 0; }

at::Tensor gatherRows(const at::Tensor& x, int64_t* offset, const std::vector<int64_t>& padDims, double padValue) {
  if (offset) *offset = 0;
  if (!current) return x;
  Distributed& d = *current;
  const int64_t W = d.worldSize(), rank = d.rank(), dims = x.dim();
  if (dims < 1) argError("ERR_SHAPE", "gatherRows needs a tensor with rows (at least 1 dim), got a scalar");
  // Every rank's shape first (its rank count, then the sizes), so ranks disagreeing are named.
  at::Tensor shape = at::full({1 + 8}, -1, at::kLong);
  shape[0] = dims;
  for (int64_t k = 0; k < std::min<int64_t>(dims, 8); ++k) shape[1 + k] = x.size(k);
  if (dims > 8) argError("ERR_SHAPE", "gatherRows handles tensors of at most 8 dims, got ", dims);
  std::vector<at::Tensor> shapes = d.allGather(shape);
  std::vector<int64_t> rows(W), most(x.sizes().begin(), x.sizes().end());
  for (int64_t r = 0; r < W; ++r) {
    auto s = shapes[r].accessor<int64_t, 1>();
    if (s[0] != dims) fail(ErrorKind::Native, "ERR_DISTRIBUTED", "gatherRows: rank ", r, " holds a ", s[0], "-dim tensor where rank ", rank, " holds ", dims, " dims");
    rows[r] = s[1];
    for (int64_t k = 0; k < dims; ++k) {
      const bool padded = k == 0 || std::find(padDims.begin(), padDims.end(), k) != padDims.end();
      if (!padded && s[1 + k] != x.size(k))
        fail(ErrorKind::Native, "ERR_DISTRIBUTED", "gatherRows: dim ", k, " is ", s[1 + k], " on rank ", r, " but ", x.size(k), " on rank ", rank);
      most[k] = std::max(most[k], s[1 + k]);
    }
  }
  int64_t before = 0;
  for (int64_t r = 0; r < rank; ++r) before += rows[r];
  if (offset) *offset = before;
  at::Tensor padded = x;
  std::vector<int64_t> pad;  // constant_pad_nd: last dim first, (before, after) pairs
  bool any = false;
  for (int64_t k = dims - 1; k >= 0; --k) {
    pad.push_back(0);
    pad.push_back(most[k] - x.size(k));
    any = any || most[k] != x.size(k);
  }
  if (any) padded = at::constant_pad_nd(x, pad, padValue);
  at::Tensor all = AllGatherFunction::apply(padded);
  if (std::all_of(rows.begin(), rows.end(), [&](int64_t n) { return n == most[0]; })) return all;
  std::vector<at::Tensor> blocks;
  for (int64_t r = 0; r < W; ++r) blocks.push_back(all.narrow(0, r * most[0], rows[r]));
  return at::cat(blocks, 0);
}

at::Tensor globalSum(const at::Tensor& x) { return current ? AllReduceFunction::apply(x) : x; }

at::Tensor syncBatchNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor runningMean, at::Tensor runningVar,
                         at::Tensor batchesTracked, c10::optional<double> momentum, double eps, bool trackRunningStats) {
  if (x.dim() < 2) argError("ERR_SHAPE", "batch norm needs [N, C, ...] input, got ", x.dim(), " dims");
  const int64_t C = x.size(1);
  // Per-rank count, mean and centred sum of squares, combined exactly (Chan et al.): no
  // E[x^2] - E[x]^2 cancellation, and a rank with no rows adds nothing.
  std::vector<int64_t> reduceDims{0};
  for (int64_t k = 2; k < x.dim(); ++k) reduceDims.push_back(k);
  const int64_t n = x.numel() / std::max<int64_t>(C, 1);
  at::Tensor localMean = n > 0 ? x.mean(reduceDims) : at::zeros({C}, x.options());
  std::vector<int64_t> shape(x.dim(), 1);
  shape[1] = C;
  at::Tensor localM2 = n > 0 ? (x - localMean.view(shape)).pow(2).sum(reduceDims) : at::zeros({C}, x.options());
  at::Tensor stats = AllGatherFunction::apply(at::cat({localMean, localM2}).unsqueeze(0));  // [W, 2C]
  std::vector<at::Tensor> counts = currentDistributed()->allGather(at::full({1}, static_cast<double>(n), x.options().dtype(at::kDouble)));
  at::Tensor weights = at::cat(counts).to(x.scalar_type()).unsqueeze(1);  // [W, 1]
  const double N = weights.sum().item<double>();
  if (N < 2) fail(ErrorKind::Native, "ERR_SHAPE", "batch norm needs at least 2 values per channel over the global batch, got ", N);
  at::Tensor means = stats.narrow(1, 0, C), m2s = stats.narrow(1, C, C);
  at::Tensor mean = (weights * means).sum(0) / N;
  at::Tensor m2 = m2s.sum(0) + (weights * (means - mean.unsqueeze(0)).pow(2)).sum(0);
  at::Tensor var = m2 / N;
  if (trackRunningStats && runningMean.defined()) {
    at::NoGradGuard ng;
    double factor = momentum.value_or(0.0);
    if (batchesTracked.defined()) {
      batchesTracked.add_(1);
      if (!momentum) factor = 1.0 / batchesTracked.item<double>();
    }
    runningMean.mul_(1 - factor).add_(mean.detach() * factor);
    runningVar.mul_(1 - factor).add_(m2.detach() / (N - 1) * factor);
  }
  at::Tensor y = (x - mean.view(shape)) * at::rsqrt(var + eps).view(shape);
  if (weight.defined()) y = y * weight.view(shape);
  if (bias.defined()) y = y + bias.view(shape);
  return y;
}

at::Tensor forwardSyncingNorms(torch::nn::Sequential& seq, const at::Tensor& x) {
  at::Tensor y = x;
  for (auto& m : *seq) {
    if (m.ptr()->as<torch::nn::BatchNorm2d>()) {
      torch::nn::BatchNorm2d bn(std::dynamic_pointer_cast<torch::nn::BatchNorm2dImpl>(m.ptr()));
      y = batchNorm(bn, y);
    } else if (m.ptr()->as<torch::nn::BatchNorm1d>()) {
      torch::nn::BatchNorm1d bn(std::dynamic_pointer_cast<torch::nn::BatchNorm1dImpl>(m.ptr()));
      y = batchNorm(bn, y);
    } else {
      y = m.forward(y);
    }
  }
  return y;
}

}  // namespace nn
}  // namespace radkit
