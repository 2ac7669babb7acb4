// Loading a mailbox or calendar actor's record from the sync family.
//
// Used by both actors when they are activated: a missing record leaves the
// defaults (not linked, sync disabled); a failed read or a damaged record
// stops the actor, and the directory reactivates it on the next message.
#pragma once

#include <string>

#include <caf/actor_system.hpp>

#include "actors/env.hpp"
#include "common/log.hpp"
#include "protocol/errors.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::actors {

template <class Self, class Record>
void load_sync_record(Self* self, const actor_env& env, entity_kind kind,
                      Record& record) {
  std::string value;
  bool found = false;
  auto what = std::string{to_string(kind)} + " " + record.user.str();
  auto key = storage::keys::sync_state(record.org, record.user, kind);
  if (auto err = env.db->get(storage::column::sync, key, value, found)) {
    log::error(what + ": cannot load: " + self->system().render(err));
    self->quit(err);
  } else if (found && !storage::codec::decode(value, record)) {
    log::error(what + ": corrupt state record");
    self->quit(make_crm_error(crm_errc::storage_failure, "storage_failure",
                              "corrupt " + what + " record"));
  }
}

} // namespace crmsync::actors
