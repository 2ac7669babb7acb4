// Comparing a secret whose length is public (common/crypto.hpp has the
// general equal_secret, which hashes both sides to hide lengths too).
#pragma once

#include <string_view>

namespace crmsync::crypto {

/// Equality for a secret whose length is public (one this program made,
/// of a fixed length): false at once when the lengths differ, else in a
/// time that does not depend on where the bytes differ. No hashing, so
/// cheap enough for a check per request.
bool equal_known_length(std::string_view secret, std::string_view given);

} // namespace crmsync::crypto
