// Data-parallel training as model code sees it, free of c10d and N-API: an abstract process group
// (native/distributed/process_group.h implements it on LibTorch's c10d), the group of the training step
// running on this thread, and the differentiable collectives that let cross-sample terms
// (contrastive losses, batch-norm statistics) see the global batch.
//
// The gradient convention (what makes N ranks with global batch B equal one process with batch B):
// every rank returns W x its share of the global loss (a per-row mean over its own rows is that when
// ranks hold equal row counts; normalisers that are not row counts, such as token counts, must be
// global: globalSum), and the trainer averages gradients over ranks. The backward of a gathered
// tensor sums the gradients every rank computed for this rank's rows, so terms coupling rows of
// different ranks get their whole gradient.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

#include <cstdint>
#include <vector>

namespace radkit {
namespace nn {

class Distributed {
 public:
  virtual ~Distributed() = default;
  virtual int64_t rank() const = 0;
  virtual int64_t worldSize() const = 0;
  // Sum over ranks, in place (contiguous tensors). Failures (a lost peer, a timeout) throw a
  // RadkitFailure with code ERR_DISTRIBUTED naming the operation and this rank.
  virtual void allReduceSum(std::vector<at::Tensor>& tensors) = 0;
  // Every rank's tensor (same shape on every rank), in rank order.
  virtual std::vector<at::Tensor> allGather(const at::Tensor& x) = 0;
  // Root's tensors into every rank's (in place).
  virtual void broadcast(std::vector<at::Tensor>& tensors, int64_t root) = 0;
};

// The process group of the distributed training step running on this thread; null otherwise
// (one process, evaluation, generation). Loss code consults it through the functions below.
Distributed* currentDistributed();

// Makes `d` current on this thread for a training step's forward and backward.
class DistributedScope {
 public:
  explicit DistributedScope(Distributed* d);
  ~DistributedScope();
  DistributedScope(const DistributedScope&) = delete;
  DistributedScope& operator=(const DistributedScope&) = delete;

 private:
  Distributed* previous_;
};

int64_t worldSize();  // 1 without a current group
int64_t worldRank();  // 0 without a current group

// The rows of every rank concatenated in rank order, differentiable (its backward gives this
// rank's rows the sum of every rank's gradient for them). `x` itself without a current group.
// Ranks may hold different row counts; dims listed in `padDims` may differ too and are padded with
// `padValue` to the largest size of any rank (other dims must agree). `offset` receives the
// position of this rank's first row.
at::Tensor gatherRows(const at::Tensor& x, int64_t* offset = nullptr, const std::vector<int64_t>& padDims = {}, double padValue = 0);

// Sum over ranks, differentiable (backward: the sum of every rank's gradient). `x` without a group.
at::Tensor globalSum(const at::Tensor& x);

// Batch norm over the global batch while a group is current and the module trains (statistics from
// every rank's rows, running statistics updated with them, as PyTorch's SyncBatchNorm); the
// module's own forward otherwise. Use it instead of bn->forward(x) where a system's batch norm
// should see the global batch.
at::Tensor syncBatchNorm(const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias, at::Tensor runningMean, at::Tensor runningVar,
                         at::Tensor batchesTracked, c10::optional<double> momentum, double eps, bool trackRunningStats);

template <typename BatchNorm>
at::Tensor batchNorm(BatchNorm& bn, const at::Tensor& x) {
  if (!currentDistributed() || !bn->is_training()) return bn->forward(x);
  const auto& o = bn->options;
  return syncBatchNorm(x, bn->weight, bn->bias, bn->running_mean, bn->running_var, bn->num_batches_tracked, o.momentum(), o.eps(), o.track_running_stats());
}

// A Sequential's forward with its BatchNorm1d/2d layers through syncBatchNorm.
at::Tensor forwardSyncingNorms(torch::nn::Sequential& seq, const at::Tensor& x);

}  // namespace nn
}  // namespace radkit
