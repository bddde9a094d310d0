// A process group on LibTorch's c10d (the one native file that calls c10d): TCPStore rendezvous,
// then Gloo collectives on the CPU. Free of N-API (native/binding/distributed.cc wraps it).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "../nn/distributed.h"

namespace radkit {
namespace dist {

struct GroupOptions {
  int64_t rank = 0;
  int64_t worldSize = 1;
  std::string masterAddr = "127.0.0.1";
  int64_t masterPort = 29500;
  std::string backend = "gloo";  // 'gloo' (CPU); 'nccl' is refused in this build
  double initTimeoutSeconds = 30;         // rendezvous: master reachable, every rank arrived, world sizes agree
  double timeoutSeconds = 300;            // each collective
  double bucketMegabytes = 25;            // gradient all-reduce buckets (as DDP's default)
};

// Facts about the c10d this binary was built with.
struct Capabilities {
  bool gloo = false;  // Gloo headers were found at build time
  bool nccl = false;
  std::string note;   // why one is missing
};
Capabilities capabilities();

class ProcessGroup : public nn::Distributed {
 public:
  // Rendezvous (blocks up to options.initTimeoutSeconds): throws RadkitFailure ERR_DISTRIBUTED naming
  // what went wrong (no master at ADDR:PORT, a rank missing, world sizes that differ between ranks).
  explicit ProcessGroup(const GroupOptions& options);
  ~ProcessGroup() override;

  int64_t rank() const override { return options_.rank; }
  int64_t worldSize() const override { return options_.worldSize; }
  const GroupOptions& options() const { return options_; }

  void allReduceSum(std::vector<at::Tensor>& tensors) override;
  std::vector<at::Tensor> allGather(const at::Tensor& x) override;
  void broadcast(std::vector<at::Tensor>& tensors, int64_t root) override;
  void barrier();

  // The rendezvous store, for small facts every rank must agree on (configurations, evaluation
  // outputs): set this rank's value under key/RANK, then every rank's values in rank order (waits
  // up to the collective timeout for the others).
  std::vector<std::string> exchange(const std::string& key, const std::string& value);

  // Averages the gradients of `params` over ranks in buckets of options.bucketMegabytes (gradients
  // a rank lacks count as zeros; a parameter without a gradient on every rank keeps none) and adds
  // `extra` (scalars to sum, e.g. the loss) to the last bucket. Returns the seconds spent waiting on
  // the all-reduces.
  double averageGradients(const std::vector<at::Tensor>& params, std::vector<double>& extraSums);

  // Rank `root`'s values into every rank's parameters and buffers (in place).
  void broadcastTensors(const std::vector<at::Tensor>& tensors, int64_t root);

  // The group can no longer be used (after an error it stays closed).
  void close();
  bool closed() const;

 private:
  struct State;
  GroupOptions options_;
  std::unique_ptr<State> state_;
  void check(const char* op) const;
};

}  // namespace dist
}  // namespace radkit
