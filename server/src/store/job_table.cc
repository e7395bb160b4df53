#include "store/job_table.h"

#include "absl/strings/substitute.h"

namespace lorad::server {

std::string JobTableSchema(absl::string_view table) {
  return absl::Substitute(R"sql(
CREATE TABLE IF NOT EXISTS $0 (
  id TEXT PRIMARY KEY NOT NULL,
  state INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  proto BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS $0_by_state ON $0 (state, created_at, id);
CREATE INDEX IF NOT EXISTS $0_by_created ON $0 (created_at);
)sql",
                          table);
}

}  // namespace lorad::server
