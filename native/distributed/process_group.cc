// The only file that calls c10d, so a LibTorch whose c10d declarations differ is fixed here alone.
// Built and tested against LibTorch 1.13 (Debian); not yet compiled against 2.x here (no Python
// torch on this machine). What differs in 2.x, and how this file stays on the common subset:
//   - ProcessGroupGloo derives from c10d::Backend instead of c10d::ProcessGroup: it is used
//     directly as c10d::ProcessGroupGloo, never through either base;
//   - TCPStoreOptions gained fields (useLibUV, masterListenFd): only the 1.13 fields are set;
//   - createDeviceForHostname gained a defaulted lazyInit argument: called with the hostname only;
//   - the Gloo headers (gloo/...) come with Python torch; Debian ships them as libgloo-dev.
// TORCH_VERSION_MAJOR guards go below wherever a 2.x build needs one.
#include "process_group.h"

#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <thread>

#include "../core/errors.h"

#if __has_include(<gloo/rendezvous/store.h>) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>)
#define RADKIT_HAS_GLOO 1
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#else
#define RADKIT_HAS_GLOO 0
#endif

namespace radkit {
namespace dist {

namespace {

std::string firstLine(const std::string& m) {
  auto nl = m.find('\n');
  std::string s = nl == std::string::npos ? m : m.substr(0, nl);
  // c10d prefixes messages with the source position ("[../third_party/gloo/...:598] ").
  if (!s.empty() && s[0] == '[') {
    auto close = s.find("] ");
    if (close != std::string::npos && s.find(".cc:") < close) s = s.substr(close + 2);
  }
  return s;
}

std::string currentMessage() {
  try {
    throw;
  } catch (const c10::Error& e) {
    return firstLine(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return firstLine(e.what());
  } catch (...) {
    return "unknown error";
  }
}

std::chrono::milliseconds millis(double seconds) { return std::chrono::milliseconds(static_cast<int64_t>(std::llround(seconds * 1000))); }

bool loopback(const std::string& host) { return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1"; }

}  // namespace

Capabilities capabilities() {
  Capabilities c;
  c.gloo = RADKIT_HAS_GLOO;
  c.nccl = false;
  std::ostringstream note;
  if (!c.gloo) note << "this radkit binary was built without the Gloo headers (Debian: apt-get install libgloo-dev, then rebuild: npm run build:native / npx radkit build)";
  else note << "NCCL (GPU collectives) is not wired into radkit yet: use backend 'gloo'";
  c.note = note.str();
  return c;
}

#if RADKIT_HAS_GLOO

struct ProcessGroup::State {
  c10::intrusive_ptr<c10d::TCPStore> tcp;
  c10::intrusive_ptr<c10d::Store> store;  // radkit's keys (prefix "radkit/")
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
  mutable std::mutex mutex;
  std::string failure;  // the first collective failure; the group stays closed after it
  bool closed = false;
};

ProcessGroup::ProcessGroup(const GroupOptions& o) : options_(o), state_(std::make_unique<State>()) {
  if (o.worldSize < 1 || o.worldSize > 65536) argError("ERR_INVALID_ARG", "worldSize must be in [1, 65536], got ", o.worldSize);
  if (o.rank < 0 || o.rank >= o.worldSize) argError("ERR_INVALID_ARG", "rank must be in [0, worldSize - 1] = [0, ", o.worldSize - 1, "], got ", o.rank);
  if (o.masterPort < 1 || o.masterPort > 65535) argError("ERR_INVALID_ARG", "masterPort must be in [1, 65535], got ", o.masterPort);
  if (o.masterAddr.empty()) argError("ERR_INVALID_ARG", "masterAddr must be a host name or address");
  if (!(o.initTimeoutSeconds > 0) || !(o.timeoutSeconds > 0)) argError("ERR_INVALID_ARG", "timeouts must be > 0 seconds");
  if (!(o.bucketMegabytes > 0)) argError("ERR_INVALID_ARG", "bucketMegabytes must be > 0");
  if (o.backend == "nccl") argError("ERR_UNSUPPORTED", "backend 'nccl': ", capabilities().note);
  if (o.backend != "gloo") argError("ERR_INVALID_ARG", "backend must be 'gloo' (CPU) or 'nccl' (CUDA), got '", o.backend, "'");
  const std::string where = "rank " + std::to_string(o.rank) + " of " + std::to_string(o.worldSize);
  const std::string master = o.masterAddr + ":" + std::to_string(o.masterPort);
  const auto initTimeout = millis(o.initTimeoutSeconds);

  // 1. The store: rank 0 serves it, the others connect (retrying until the timeout).
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(o.masterPort);
  so.isServer = o.rank == 0;
  so.numWorkers = static_cast<std::size_t>(o.worldSize);
  so.waitWorkers = false;  // the arrival check below names the missing ranks
  so.timeout = initTimeout;
  try {
    state_->tcp = c10::make_intrusive<c10d::TCPStore>(o.masterAddr, so);
  } catch (...) {
    const std::string m = currentMessage();
    if (o.rank == 0)
      fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": could not serve the rendezvous store on ", master, ": ", m, " (is the port in use? choose another --master-port)");
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": no master at ", master, " within ", o.initTimeoutSeconds, " s (", m,
         "); start rank 0 there, or check --master-addr/--master-port (MASTER_ADDR/MASTER_PORT)");
  }
  state_->store = c10::make_intrusive<c10d::PrefixStore>("radkit", state_->tcp);
  auto& store = *state_->store;

  // 2. Every rank arrives, once, and agrees on the world size.
  try {
    const int64_t claims = store.add("claim/" + std::to_string(o.rank), 1);
    if (claims > 1) fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": another process already joined as rank ", o.rank, " (two workers were given the same RANK)");
    const std::string ws = std::to_string(o.worldSize);
    store.set("arrived/" + std::to_string(o.rank), std::vector<uint8_t>(ws.begin(), ws.end()));
  } catch (const RadkitFailure&) {
    throw;
  } catch (...) {
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": the rendezvous store at ", master, " failed: ", currentMessage());
  }
  const auto deadline = std::chrono::steady_clock::now() + initTimeout;
  std::vector<int64_t> missing;
  for (;;) {
    missing.clear();
    try {
      for (int64_t r = 0; r < o.worldSize; ++r) {
        const std::string key = "arrived/" + std::to_string(r);
        if (!store.check({key})) {
          missing.push_back(r);
          continue;
        }
        auto v = store.get(key);
        const std::string theirs(v.begin(), v.end());
        if (theirs != std::to_string(o.worldSize))
          fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": rank ", r, " was started with world size ", theirs, " but this rank with ", o.worldSize,
               ": every worker must get the same WORLD_SIZE (--nnodes x --nproc-per-node)");
      }
    } catch (const RadkitFailure&) {
      throw;
    } catch (...) {
      fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": lost the rendezvous store at ", master, " (", currentMessage(), "): rank 0 exited or failed");
    }
    if (missing.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      std::ostringstream m;
      for (size_t i = 0; i < missing.size() && i < 8; ++i) m << (i ? ", " : "") << missing[i];
      if (missing.size() > 8) m << ", ... (" << missing.size() << " in all)";
      fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": rank(s) ", m.str(), " did not join within ", o.initTimeoutSeconds,
           " s: a worker failed to start, or the workers disagree on the world size");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }

  // 3. Gloo: full-mesh connections through the store.
  try {
    auto go = c10d::ProcessGroupGloo::Options::create(millis(o.timeoutSeconds));
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");
    if (iface && *iface) go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (loopback(o.masterAddr)) go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    go->threads = 2;
    auto glooStore = c10::make_intrusive<c10d::PrefixStore>("gloo", state_->store);
    state_->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(glooStore, static_cast<int>(o.rank), static_cast<int>(o.worldSize), go);
  } catch (...) {
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", where, ": Gloo could not connect the ranks: ", currentMessage(),
         " (several machines: set GLOO_SOCKET_IFNAME to the interface the others can reach)");
  }
  state_->tcp->setTimeout(millis(o.timeoutSeconds));
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::check(const char* op) const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  if (state_->closed)
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", "rank ", options_.rank, ": ", op, " on a closed process group",
         state_->failure.empty() ? std::string() : " (it failed earlier: " + state_->failure + ")");
}

namespace {
// Waits for a collective; a failure (a peer that exited, a timeout) closes the group.
template <typename WorkPtr>
void await(WorkPtr& work, const char* op, int64_t rank, double timeout, std::string& failure, bool& closed, std::mutex& mutex) {
  try {
    work->wait();
  } catch (...) {
    const std::string m = currentMessage();
    std::lock_guard<std::mutex> lock(mutex);
    if (failure.empty()) failure = std::string(op) + ": " + m;
    closed = true;
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", "rank ", rank, ": ", op, " failed: ", m,
         " (another rank exited, failed or did not reach this step within ", timeout, " s; the run stops; rerun it to resume from the last checkpoint)");
  }
}
}  // namespace

void ProcessGroup::allReduceSum(std::vector<at::Tensor>& tensors) {
  check("all-reduce");
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    works.push_back(state_->gloo->allreduce(one));
  }
  for (auto& w : works) await(w, "all-reduce", options_.rank, options_.timeoutSeconds, state_->failure, state_->closed, state_->mutex);
}

std::vector<at::Tensor> ProcessGroup::allGather(const at::Tensor& x) {
  check("all-gather");
  std::vector<at::Tensor> in{x.contiguous()};
  std::vector<std::vector<at::Tensor>> out(1);
  for (int64_t r = 0; r < options_.worldSize; ++r) out[0].push_back(at::empty_like(in[0]));
  auto w = state_->gloo->allgather(out, in);
  await(w, "all-gather", options_.rank, options_.timeoutSeconds, state_->failure, state_->closed, state_->mutex);
  return out[0];
}

void ProcessGroup::broadcast(std::vector<at::Tensor>& tensors, int64_t root) {
  check("broadcast");
  c10d::BroadcastOptions bo;
  bo.rootRank = root;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    works.push_back(state_->gloo->broadcast(one, bo));
  }
  for (auto& w : works) await(w, "broadcast", options_.rank, options_.timeoutSeconds, state_->failure, state_->closed, state_->mutex);
}

void ProcessGroup::barrier() {
  check("barrier");
  auto w = state_->gloo->barrier();
  await(w, "barrier", options_.rank, options_.timeoutSeconds, state_->failure, state_->closed, state_->mutex);
}

std::vector<std::string> ProcessGroup::exchange(const std::string& key, const std::string& value) {
  check("exchange");
  try {
    auto& store = *state_->store;
    store.set("x/" + key + "/" + std::to_string(options_.rank), std::vector<uint8_t>(value.begin(), value.end()));
    std::vector<std::string> keys, out;
    for (int64_t r = 0; r < options_.worldSize; ++r) keys.push_back("x/" + key + "/" + std::to_string(r));
    store.wait(keys, millis(options_.timeoutSeconds));
    for (auto& k : keys) {
      auto v = store.get(k);
      out.emplace_back(v.begin(), v.end());
    }
    return out;
  } catch (...) {
    const std::string m = currentMessage();
    {
      std::lock_guard<std::mutex> lock(state_->mutex);
      if (state_->failure.empty()) state_->failure = "exchange '" + key + "': " + m;
      state_->closed = true;
    }
    fail(ErrorKind::Native, "ERR_DISTRIBUTED", "rank ", options_.rank, ": exchanging '", key, "' failed: ", m, " (another rank exited or did not reach this point within ",
         options_.timeoutSeconds, " s)");
  }
}

double ProcessGroup::averageGradients(const std::vector<at::Tensor>& params, std::vector<double>& extraSums) {
  check("gradient all-reduce");
  at::NoGradGuard ng;
  const double W = static_cast<double>(options_.worldSize);
  const int64_t bucketBytes = std::max<int64_t>(1, static_cast<int64_t>(options_.bucketMegabytes * 1024 * 1024));
  // Buckets of consecutive parameters of one dtype and device.
  struct Bucket {
    std::vector<size_t> members;
    at::Tensor flat;
  };
  std::vector<Bucket> buckets;
  int64_t bytes = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    const at::Tensor& p = params[i];
    const int64_t b = p.numel() * static_cast<int64_t>(p.element_size());
    if (buckets.empty() || bytes + b > bucketBytes || params[buckets.back().members.front()].scalar_type() != p.scalar_type() ||
        params[buckets.back().members.front()].device() != p.device()) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().members.push_back(i);
    bytes += b;
  }
  // Which parameters have a gradient (counts over ranks), then the caller's sums.
  at::Tensor facts = at::zeros({static_cast<int64_t>(params.size() + extraSums.size())}, at::kDouble);
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].grad().defined()) facts[static_cast<int64_t>(i)] = 1.0;
  for (size_t j = 0; j < extraSums.size(); ++j) facts[static_cast<int64_t>(params.size() + j)] = extraSums[j];
  std::vector<at::Tensor> flats;
  for (auto& bucket : buckets) {
    std::vector<at::Tensor> parts;
    for (size_t i : bucket.members) {
      const at::Tensor& p = params[i];
      parts.push_back(p.grad().defined() ? p.grad().reshape({-1}) : at::zeros({p.numel()}, p.options()));
    }
    bucket.flat = at::cat(parts);
    flats.push_back(bucket.flat);
  }
  flats.push_back(facts);
  const auto t0 = std::chrono::steady_clock::now();
  allReduceSum(flats);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (auto& bucket : buckets) {
    bucket.flat.div_(W);
    int64_t at0 = 0;
    for (size_t i : bucket.members) {
      at::Tensor p = params[i];
      const int64_t n = p.numel();
      at::Tensor g = bucket.flat.narrow(0, at0, n).view(p.sizes());
      at0 += n;
      if (facts[static_cast<int64_t>(i)].item<double>() == 0) continue;  // no rank has a gradient
      if (p.grad().defined()) p.mutable_grad().copy_(g);
      else p.mutable_grad() = g.clone();
    }
  }
  for (size_t j = 0; j < extraSums.size(); ++j) extraSums[j] = facts[static_cast<int64_t>(params.size() + j)].item<double>();
  return seconds;
}

void ProcessGroup::broadcastTensors(const std::vector<at::Tensor>& tensors, int64_t root) {
  at::NoGradGuard ng;
  std::vector<at::Tensor> buffers;
  for (const at::Tensor& t : tensors) buffers.push_back(t.is_contiguous() ? t.detach() : t.contiguous());
  broadcast(buffers, root);
  for (size_t i = 0; i < tensors.size(); ++i)
    if (!tensors[i].is_contiguous()) tensors[i].detach().copy_(buffers[i]);
}

void ProcessGroup::close() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->closed = true;
}

bool ProcessGroup::closed() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->closed;
}

#else  // no Gloo headers at build time

struct ProcessGroup::State {};

ProcessGroup::ProcessGroup(const GroupOptions& o) : options_(o) {
  fail(ErrorKind::Native, "ERR_UNSUPPORTED", "distributed training: ", capabilities().note);
}
ProcessGroup::~ProcessGroup() = default;
void ProcessGroup::check(const char*) const {}
void ProcessGroup::allReduceSum(std::vector<at::Tensor>&) {}
std::vector<at::Tensor> ProcessGroup::allGather(const at::Tensor& x) { return {x}; }
void ProcessGroup::broadcast(std::vector<at::Tensor>&, int64_t) {}
void ProcessGroup::barrier() {}
std::vector<std::string> ProcessGroup::exchange(const std::string&, const std::string& v) { return {v}; }
double ProcessGroup::averageGradients(const std::vector<at::Tensor>&, std::vector<double>&) { return 0; }
void ProcessGroup::broadcastTensors(const std::vector<at::Tensor>&, int64_t) {}
void ProcessGroup::close() {}
bool ProcessGroup::closed() const { return true; }

#endif

}  // namespace dist
}  // namespace radkit
