#include "ctl/table.hpp"

#include <algorithm>

namespace crmsync::ctl {

namespace {

bool is_continuation(unsigned char c) {
  return (c & 0xC0) == 0x80;
}

void pad(std::string& out, std::size_t n) {
  out.append(n, ' ');
}

} // namespace

std::size_t display_width(std::string_view s) {
  std::size_t n = 0;
  for (char ch : s)
    if (!is_continuation(static_cast<unsigned char>(ch)))
      ++n;
  return n;
}

std::string truncate(std::string_view s, std::size_t max_width) {
  if (display_width(s) <= max_width)
    return std::string(s);
  if (max_width == 0)
    return {};
  // Keep max_width - 1 code points, then the ellipsis.
  std::size_t keep = max_width - 1;
  std::size_t seen = 0;
  std::size_t cut = 0;
  for (; cut < s.size(); ++cut) {
    if (is_continuation(static_cast<unsigned char>(s[cut])))
      continue;
    if (seen == keep)
      break;
    ++seen;
  }
  std::string out(s.substr(0, cut));
  out += "\xE2\x80\xA6"; // U+2026 HORIZONTAL ELLIPSIS
  return out;
}

std::string sanitize(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7F) {
      out += ' ';
    } else if (c == 0xC2 && i + 1 < s.size()
               && static_cast<unsigned char>(s[i + 1]) >= 0x80
               && static_cast<unsigned char>(s[i + 1]) <= 0x9F) {
      // C1 control (U+0080..U+009F); some terminals treat U+009B as CSI.
      out += ' ';
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

table::table(std::vector<column> columns) : columns_(std::move(columns)) {}

void table::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (std::size_t i = 0; i < cells.size(); ++i) {
    cells[i] = sanitize(cells[i]);
    if (columns_[i].max_width > 0)
      cells[i] = truncate(cells[i], columns_[i].max_width);
  }
  rows_.push_back(std::move(cells));
}

std::string table::render() const {
  std::vector<std::size_t> widths;
  widths.reserve(columns_.size());
  for (const auto& col : columns_)
    widths.push_back(display_width(col.title));
  for (const auto& row : rows_)
    for (std::size_t i = 0; i < row.size(); ++i)
      widths[i] = std::max(widths[i], display_width(row[i]));

  std::string out;
  auto emit = [&](auto cell_at) {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
      const std::string& cell = cell_at(i);
      std::size_t gap = widths[i] - display_width(cell);
      bool last = i + 1 == columns_.size();
      if (i > 0)
        out += "  ";
      if (columns_[i].alignment == align::right) {
        pad(out, gap);
        out += cell;
      } else {
        out += cell;
        if (!last)
          pad(out, gap);
      }
    }
    // Empty trailing cells can still leave blanks behind; drop them.
    while (!out.empty() && out.back() == ' ')
      out.pop_back();
    out += '\n';
  };

  emit([&](std::size_t i) -> const std::string& { return columns_[i].title; });
  for (const auto& row : rows_)
    emit([&](std::size_t i) -> const std::string& { return row[i]; });
  return out;
}

void kv_block::section(std::string title) {
  groups_.push_back(group{sanitize(title), {}});
}

void kv_block::add(std::string key, std::string value) {
  if (groups_.empty())
    groups_.push_back(group{});
  groups_.back().rows.emplace_back(sanitize(key), sanitize(value));
}

std::string kv_block::render() const {
  std::size_t key_width = 0;
  for (const auto& g : groups_)
    for (const auto& [key, value] : g.rows)
      key_width = std::max(key_width, display_width(key));

  std::string out;
  for (const auto& g : groups_) {
    bool titled = !g.title.empty();
    if (titled)
      out += g.title + '\n';
    for (const auto& [key, value] : g.rows) {
      if (titled)
        out += "  ";
      out += key;
      if (!value.empty()) {
        pad(out, key_width - display_width(key) + 2);
        out += value;
      }
      out += '\n';
    }
  }
  return out;
}

} // namespace crmsync::ctl
