// Plain-text layout for crmsyncctl: aligned tables and key/value blocks.
//
// Widths are counted in UTF-8 code points, which is right for the Latin,
// Cyrillic and Greek text the console shows; wide CJK glyphs and combining
// marks are not measured specially. Control characters are replaced so that
// data from the node can never move the cursor or inject escape sequences.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace crmsync::ctl {

/// Number of code points in `s` (bytes that are not UTF-8 continuations).
std::size_t display_width(std::string_view s);

/// Returns `s` cut to at most `max_width` code points; when it had to cut,
/// the last kept code point is replaced by "…". Never splits a code point.
std::string truncate(std::string_view s, std::size_t max_width);

/// Returns `s` with every ASCII control character (including ESC, newline
/// and tab) and DEL replaced by a space.
std::string sanitize(std::string_view s);

enum class align { left, right };

/// A table with a header row. Columns are separated by two spaces; the last
/// column is not padded, so no line ends in blanks.
class table {
public:
  struct column {
    std::string title;
    align alignment = align::left;
    /// 0 means unlimited; longer cells are truncated with "…".
    std::size_t max_width = 0;
  };

  explicit table(std::vector<column> columns);

  /// Adds one row. Missing trailing cells are treated as empty; surplus cells
  /// are ignored. Cells are sanitized and truncated here.
  void add_row(std::vector<std::string> cells);

  std::size_t rows() const {
    return rows_.size();
  }
  bool empty() const {
    return rows_.empty();
  }

  /// The header line and all rows, each line ending in '\n'.
  std::string render() const;

private:
  std::vector<column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

/// Key/value lines grouped in optional sections:
///
///   Title
///     key        value
///     other key  value
///
/// Keys are padded to one common width across all sections. A section with
/// an empty title prints its rows without indentation.
class kv_block {
public:
  /// Starts a new section; rows added afterwards belong to it.
  void section(std::string title);
  void add(std::string key, std::string value);

  std::string render() const;

private:
  struct group {
    std::string title;
    std::vector<std::pair<std::string, std::string>> rows;
  };
  std::vector<group> groups_;
};

} // namespace crmsync::ctl
