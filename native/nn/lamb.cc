#include "lamb.h"

#include <cmath>
#include <string>

#include "optim_state_key.h"

namespace radkit {
namespace nn {

at::Tensor Lamb::step(LossClosure closure) {
  at::NoGradGuard noGrad;
  at::Tensor loss;
  if (closure) {
    at::AutoGradMode enable(true);
    loss = closure();
  }
  using Key = typename std::decay_t<decltype(state_)>::key_type;
  for (auto& group : param_groups_) {
    auto& o = static_cast<torch::optim::AdamOptions&>(group.options());
    const double b1 = std::get<0>(o.betas()), b2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const at::Tensor& g = p.grad();
      Key key = stateKey<Key>(p);
      auto it = state_.find(key);
      if (it == state_.end()) {
        auto s = std::make_unique<torch::optim::AdamParamState>();
        s->step(0);
        s->exp_avg(at::zeros_like(p, at::MemoryFormat::Preserve));
        s->exp_avg_sq(at::zeros_like(p, at::MemoryFormat::Preserve));
        it = state_.emplace(key, std::move(s)).first;
      }
      auto& s = static_cast<torch::optim::AdamParamState&>(*it->second);
      s.step(s.step() + 1);
      s.exp_avg().mul_(b1).add_(g, 1 - b1);
      s.exp_avg_sq().mul_(b2).addcmul_(g, g, 1 - b2);
      const double c1 = 1 - std::pow(b1, static_cast<double>(s.step()));
      const double c2 = 1 - std::pow(b2, static_cast<double>(s.step()));
      at::Tensor r = (s.exp_avg() / c1) / ((s.exp_avg_sq() / c2).sqrt_().add_(o.eps()));
      if (o.weight_decay() != 0) r.add_(p, o.weight_decay());
      const double pn = p.norm().item<double>(), rn = r.norm().item<double>();
      const double trust = pn > 0 && rn > 0 ? pn / rn : 1.0;
      p.add_(r, -o.lr() * trust);
    }
  }
  return loss;
}

}  // namespace nn
}  // namespace radkit
