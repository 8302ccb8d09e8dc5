#include "cluster/cli/table.hpp"

#include <algorithm>

namespace hcnode::cli {

void Table::add_row(std::vector<std::string> cells) {
  cells.resize(columns_.size());
  for (auto& c : cells) {
    if (c.empty()) {
      c = "-";
    }
  }
  rows_.push_back(std::move(cells));
}

std::string Table::render() const {
  std::vector<size_t> width(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c) {
    width[c] = columns_[c].header.size();
    for (const auto& row : rows_) {
      width[c] = std::max(width[c], row[c].size());
    }
  }
  std::string out;
  auto emit = [&](const std::vector<std::string>& cells) {
    std::string line;
    for (size_t c = 0; c < columns_.size(); ++c) {
      const bool last = c + 1 == columns_.size();
      const size_t pad = width[c] - cells[c].size();
      if (columns_[c].align == Align::kRight) {
        line.append(pad, ' ');
        line += cells[c];
      } else {
        line += cells[c];
        if (!last) {
          line.append(pad, ' ');
        }
      }
      if (!last) {
        line += "  ";
      }
    }
    out += line + "\n";
  };
  std::vector<std::string> header;
  for (const auto& col : columns_) {
    header.push_back(col.header);
  }
  emit(header);
  for (const auto& row : rows_) {
    emit(row);
  }
  return out;
}

void KeyValueList::add(std::string key, std::string value) {
  items_.emplace_back(std::move(key), value.empty() ? "-" : std::move(value));
}

std::string KeyValueList::render() const {
  size_t width = 0;
  for (const auto& [k, v] : items_) {
    width = std::max(width, k.size() + 1);
  }
  std::string out;
  for (const auto& [k, v] : items_) {
    std::string key = k.empty() ? "" : k + ":";  // an empty key continues the previous item
    key.append(width - key.size(), ' ');
    out += key + " " + v + "\n";
  }
  return out;
}

}  // namespace hcnode::cli
