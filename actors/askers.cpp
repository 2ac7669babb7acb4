#include "actors/askers.hpp"

#include <atomic>
#include <vector>

#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/send.hpp>
#include <caf/stateful_actor.hpp>

#include "protocol/type_ids.hpp"

namespace crmsync::actors {

namespace {

/// A job for an asker; local only (never crosses the wire).
struct asker_job {
  askers::job fn;
};

} // namespace

} // namespace crmsync::actors

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(crmsync::actors::asker_job)

namespace crmsync::actors {

namespace {

struct asker_state {
  ask_deadlines deadlines;
  static inline const char* name = "asker";
};

caf::behavior asker(caf::stateful_actor<asker_state>* self) {
  return {
      [=](asker_job& j) { j.fn(self, self->state.deadlines); },
      [=](atom::sweep_atom, uint64_t generation) {
        self->state.deadlines.sweep(self, generation);
      },
  };
}

} // namespace

struct askers::impl {
  std::vector<caf::actor> actors;
  std::atomic<size_t> next{0};
};

askers::askers(caf::actor_system& sys, size_t n) : impl_(new impl) {
  for (size_t i = 0; i < std::max<size_t>(1, n); ++i)
    impl_->actors.push_back(sys.spawn(asker));
}

askers::~askers() {
  for (auto& a : impl_->actors)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

void askers::run(job fn) {
  auto& a = impl_->actors[impl_->next.fetch_add(1, std::memory_order_relaxed)
                          % impl_->actors.size()];
  caf::anon_send(a, asker_job{std::move(fn)});
}

} // namespace crmsync::actors
