// libFuzzer target: the storage codecs (storage/codec.hpp) on arbitrary
// bytes, as a damaged or hostile RocksDB value would present them.
//
// Every record kind tries the bytes (only the kind named by the first byte
// can match). A value that decodes must survive a round trip: encoding it
// and decoding that again succeeds and encodes to the same bytes.
#include <cstdint>
#include <string_view>

#include "fuzz/fuzz_check.hpp"
#include "storage/codec.hpp"

namespace {

using namespace crmsync;

template <class Record>
void check(std::string_view in, const char* kind) {
  Record x;
  if (!storage::codec::decode(in, x))
    return;
  auto once = storage::codec::encode(x);
  Record y;
  fuzz::require(storage::codec::decode(once, y), kind);
  fuzz::require(storage::codec::encode(y) == once, kind);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  check<org_record>(in, "org_record");
  check<user_record>(in, "user_record");
  check<event_record>(in, "event_record");
  check<mailbox_status>(in, "mailbox_status");
  check<calendar_status>(in, "calendar_status");
  check<invite_record>(in, "invite_record");
  check<join_request_record>(in, "join_request_record");
  check<audit_entry>(in, "audit_entry");
  check<mail_item>(in, "mail_item");
  check<signin_state_record>(in, "signin_state_record");
  check<o365_session_record>(in, "o365_session_record");
  check<sync_request>(in, "sync_request");
  check<sync_link>(in, "sync_link");
  check<sync_change>(in, "sync_change");
  check<sync_conflict>(in, "sync_conflict");
  return 0;
}
