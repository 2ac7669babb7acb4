#include "protocol/type_ids.hpp"

namespace crmsync {

void register_types(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::crmsync>();
}

} // namespace crmsync
