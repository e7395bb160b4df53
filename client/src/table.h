// A plain-text table with left-aligned columns separated by two spaces.
#ifndef LORAD_CLIENT_TABLE_H_
#define LORAD_CLIENT_TABLE_H_

#include <string>
#include <vector>

namespace lorad::client {

class Table {
 public:
  explicit Table(std::vector<std::string> headers);

  // Adds a row; missing cells are blank, extra cells are dropped.
  void AddRow(std::vector<std::string> cells);

  // The header line and every row, each ending in '\n'. The last column is
  // not padded, so lines carry no trailing spaces.
  std::string Render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

}  // namespace lorad::client

#endif  // LORAD_CLIENT_TABLE_H_
