#include "sync/notify_gate.hpp"

#include <catch2/catch.hpp>

using crmsync::sync::notify_gate;

TEST_CASE("one wake-up pending per calendar until its run starts",
          "[sync][notify_gate]") {
  notify_gate gate{1000};
  const notify_gate::key ada{1, 2}, bob{1, 3};
  CHECK(gate.should_send(ada, 10'000));
  // Pending: later notifications of Ada's ride on that message.
  CHECK_FALSE(gate.should_send(ada, 10'001));
  CHECK_FALSE(gate.should_send(ada, 10'500));
  // Bob is someone else.
  CHECK(gate.should_send(bob, 10'500));
  CHECK(gate.pending() == 2);
  // Ada's run starts: what is stored from now on needs a message.
  gate.run_starts(ada);
  CHECK(gate.pending() == 1);
  CHECK(gate.should_send(ada, 10'600));
  CHECK_FALSE(gate.should_send(ada, 10'700));
  // A run that does not start within resend_after (its message was lost):
  // the next notification sends again, and holds the gate anew.
  CHECK(gate.should_send(ada, 11'600));
  CHECK_FALSE(gate.should_send(ada, 11'601));
  // A run start with nothing pending changes nothing.
  gate.run_starts({9, 9});
  CHECK(gate.pending() == 2);
}
