// Wall time of each phase of Model.trainStep, summed over steps while RADKIT_PROFILE_STEPS is set in
// the environment (bench/vsPython.ts reads it through testing.stepPhases(); off, it costs one
// flag test per phase). Not part of the public API.
#pragma once
#include <chrono>
#include <map>
#include <string>

namespace radkit {

bool stepProfiling();
void addStepPhase(const char* phase, double seconds);
std::map<std::string, double> takeStepPhases();  // and resets them

// Marks consecutive phases: mark("forward") charges the time since the previous mark to "forward".
class StepPhaseTimer {
 public:
  StepPhaseTimer() : on_(stepProfiling()), last_(std::chrono::steady_clock::now()) {}
  void mark(const char* phase) {
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    addStepPhase(phase, std::chrono::duration<double>(now - last_).count());
    last_ = now;
  }

 private:
  bool on_;
  std::chrono::steady_clock::time_point last_;
};

}  // namespace radkit
