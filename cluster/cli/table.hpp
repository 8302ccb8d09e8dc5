// Human output of hcctl: aligned columns with an upper-case header, two spaces between columns,
// numbers (sizes, counts) right-aligned. Empty cells print "-". Scripts use `-o json` instead;
// the table layout is for people and may change.
#pragma once

#include <string>
#include <vector>

namespace hcnode::cli {

enum class Align { kLeft, kRight };

struct Column {
  std::string header;
  Align align = Align::kLeft;
};

class Table {
 public:
  explicit Table(std::vector<Column> columns) : columns_(std::move(columns)) {}

  // One cell per column (fewer cells: the rest are "-").
  void add_row(std::vector<std::string> cells);
  bool empty() const { return rows_.empty(); }

  // The whole table, one line per row, each ending in '\n'. The last column is not padded.
  std::string render() const;

 private:
  std::vector<Column> columns_;
  std::vector<std::vector<std::string>> rows_;
};

// "key: value" lines with the keys aligned (hcctl image info).
class KeyValueList {
 public:
  // An empty key continues the item above (its value on the next line, aligned).
  void add(std::string key, std::string value);
  std::string render() const;

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

}  // namespace hcnode::cli
