#include "store/db.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "lorad/v1/lorad.pb.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

const Op kOp{"test store", "test op"};

std::string TestDir() { return FreshTestDir("db_test"); }

std::unique_ptr<Db> OpenOrDie(const std::string& path) {
  absl::StatusOr<std::unique_ptr<Db>> db = Db::Open(path);
  EXPECT_TRUE(db.ok()) << db.status();
  return db.ok() ? *std::move(db) : nullptr;
}

// A Db with table kv (k TEXT PRIMARY KEY, v INTEGER).
std::unique_ptr<Db> OpenWithTable(const std::string& path) {
  std::unique_ptr<Db> db = OpenOrDie(path);
  if (db == nullptr) return nullptr;
  EXPECT_TRUE(
      db->AddSchema(kOp,
                    "CREATE TABLE IF NOT EXISTS kv "
                    "(k TEXT PRIMARY KEY NOT NULL, v INTEGER NOT NULL);")
          .ok());
  return db;
}

std::vector<std::string> Keys(Db& db) {
  std::vector<std::string> keys;
  absl::Status status =
      db.Query(kOp, "SELECT k FROM kv ORDER BY k", {}, [&](const Row& row) {
        keys.emplace_back(row.Text(0));
        return absl::OkStatus();
      });
  EXPECT_TRUE(status.ok()) << status;
  return keys;
}

// Runs one statement through a separate sqlite3 connection, giving the
// first column of its first row.
std::string SqlOf(const std::string& path, const char* sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  std::string value;
  auto cb = [](void* out, int n, char** values, char**) {
    if (n > 0 && values[0]) *static_cast<std::string*>(out) = values[0];
    return 0;
  };
  EXPECT_EQ(sqlite3_exec(db, sql, cb, &value, nullptr), SQLITE_OK);
  sqlite3_close(db);
  return value;
}

TEST(DbTest, FileIsInWalModeWithSchemaVersion) {
  const std::string path = TestDir() + "/lorad.db";
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  EXPECT_EQ(SqlOf(path, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(SqlOf(path, "PRAGMA user_version"),
            std::to_string(Db::kSchemaVersion));
}

TEST(DbTest, NewerSchemaIsRefused) {
  const std::string path = TestDir() + "/lorad.db";
  { ASSERT_NE(OpenOrDie(path), nullptr); }
  SqlOf(path, "PRAGMA user_version = 99");
  auto db = Db::Open(path);
  EXPECT_EQ(db.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(db.status().message().find("99"), absl::string_view::npos)
      << db.status();
}

TEST(DbTest, UnopenableFilesAreFailedPrecondition) {
  const std::string missing = TestDir() + "/no/such/dir/lorad.db";
  auto in_missing_dir = Db::Open(missing);
  EXPECT_EQ(in_missing_dir.status().code(),
            absl::StatusCode::kFailedPrecondition)
      << in_missing_dir.status();

  const std::string garbage = TestDir() + "/garbage.db";
  std::ofstream(garbage) << std::string(8192, 'G');
  auto not_db = Db::Open(garbage);
  EXPECT_EQ(not_db.status().code(), absl::StatusCode::kFailedPrecondition)
      << not_db.status();
  EXPECT_NE(not_db.status().message().find(garbage), absl::string_view::npos)
      << not_db.status();
}

// A file whose header is sound but whose table pages are garbage opens (the
// schema is on page 1) and then reads as DataLoss, naming store and op.
TEST(DbTest, CorruptPagesAreDataLoss) {
  const std::string path = TestDir() + "/lorad.db";
  {
    auto db = OpenWithTable(path);
    ASSERT_NE(db, nullptr);
    for (int i = 0; i < 500; ++i) {
      ASSERT_TRUE(
          db->Exec(kOp, "INSERT INTO kv (k, v) VALUES (?1, ?2)",
                   {std::string(100, 'a' + i % 26) + std::to_string(i), i})
              .ok());
    }
  }  // the last connection folds the WAL into the file
  ASSERT_FALSE(std::filesystem::exists(path + "-wal"));
  const auto size = std::filesystem::file_size(path);
  ASSERT_GT(size, 3u * 4096u);
  {
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(4096);
    const std::string junk(size - 4096, '\xA5');
    f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
  }
  auto db = OpenOrDie(path);
  ASSERT_NE(db, nullptr);
  absl::Status read = db->Query(kOp, "SELECT k FROM kv ORDER BY k", {},
                                [](const Row&) { return absl::OkStatus(); });
  EXPECT_EQ(read.code(), absl::StatusCode::kDataLoss) << read;
  EXPECT_NE(read.message().find("test store: test op"), absl::string_view::npos)
      << read;
}

TEST(DbTest, StatusMappingFollowsTheContract) {
  EXPECT_TRUE(absl::IsUnavailable(SqliteStatus("s", "o", SQLITE_BUSY, "d")));
  EXPECT_TRUE(
      absl::IsUnavailable(SqliteStatus("s", "o", SQLITE_BUSY_SNAPSHOT, "d")));
  EXPECT_TRUE(absl::IsUnavailable(SqliteStatus("s", "o", SQLITE_LOCKED, "d")));
  EXPECT_TRUE(
      absl::IsResourceExhausted(SqliteStatus("s", "o", SQLITE_FULL, "d")));
  EXPECT_TRUE(
      absl::IsResourceExhausted(SqliteStatus("s", "o", SQLITE_NOMEM, "d")));
  EXPECT_TRUE(absl::IsDataLoss(SqliteStatus("s", "o", SQLITE_CORRUPT, "d")));
  for (int rc : {SQLITE_CANTOPEN, SQLITE_NOTADB, SQLITE_READONLY, SQLITE_PERM,
                 SQLITE_AUTH}) {
    EXPECT_TRUE(absl::IsFailedPrecondition(SqliteStatus("s", "o", rc, "d")))
        << rc;
  }
  EXPECT_TRUE(absl::IsAlreadyExists(
      SqliteStatus("s", "o", SQLITE_CONSTRAINT_PRIMARYKEY, "d")));
  EXPECT_TRUE(
      absl::IsInternal(SqliteStatus("s", "o", SQLITE_CONSTRAINT_NOTNULL, "d")));
  EXPECT_TRUE(absl::IsInternal(SqliteStatus("s", "o", SQLITE_ERROR, "d")));
  EXPECT_EQ(SqliteStatus("job store", "get job x", SQLITE_FULL, "disk full")
                .message(),
            "job store: get job x: disk full");
}

TEST(DbTest, TransactionCommitsOnOkAndRollsBackOnError) {
  auto db = OpenWithTable(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  const char* insert = "INSERT INTO kv (k, v) VALUES (?1, ?2)";
  ASSERT_TRUE(
      db->Transaction(kOp, [&](Txn& txn) {
          LORAD_RETURN_IF_ERROR(txn.Exec(kOp, insert, {"a", 1}).status());
          return txn.Exec(kOp, insert, {"b", 2}).status();
        }).ok());
  EXPECT_EQ(Keys(*db), (std::vector<std::string>{"a", "b"}));

  absl::Status failed = db->Transaction(kOp, [&](Txn& txn) {
    LORAD_RETURN_IF_ERROR(txn.Exec(kOp, insert, {"c", 3}).status());
    return absl::AbortedError("changed my mind");
  });
  EXPECT_TRUE(absl::IsAborted(failed)) << failed;
  EXPECT_EQ(Keys(*db), (std::vector<std::string>{"a", "b"}));

  // A statement that fails inside rolls back the statements before it.
  absl::Status duplicate = db->Transaction(kOp, [&](Txn& txn) {
    LORAD_RETURN_IF_ERROR(txn.Exec(kOp, insert, {"d", 4}).status());
    return txn.Exec(kOp, insert, {"a", 5}).status();
  });
  EXPECT_TRUE(absl::IsAlreadyExists(duplicate)) << duplicate;
  EXPECT_EQ(Keys(*db), (std::vector<std::string>{"a", "b"}));

  // The connection is usable afterwards, outside a transaction too.
  EXPECT_TRUE(db->Exec(kOp, insert, {"e", 6}).ok());
  EXPECT_EQ(Keys(*db), (std::vector<std::string>{"a", "b", "e"}));
}

TEST(DbTest, StatementCacheReusesStatements) {
  auto db = OpenWithTable(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  const int before = db->CachedStatements();
  const char* insert = "INSERT INTO kv (k, v) VALUES (?1, ?2)";
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(db->Exec(kOp, insert, {std::to_string(i), i}).ok());
  }
  EXPECT_EQ(db->CachedStatements(), before + 1);
  // The same text from another buffer is the same statement.
  const std::string copy = insert;
  ASSERT_TRUE(db->Exec(kOp, copy.c_str(), {"x", 9}).ok());
  EXPECT_EQ(db->CachedStatements(), before + 1);
  Keys(*db);
  Keys(*db);
  EXPECT_EQ(db->CachedStatements(), before + 2);
}

TEST(DbTest, ExecCountsChangesAndBindsEveryKind) {
  auto db = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(db->AddSchema(kOp,
                            "CREATE TABLE IF NOT EXISTS t "
                            "(i INTEGER, s TEXT, b BLOB);")
                  .ok());
  const std::string bytes("\0\1\2", 3);
  auto inserted = db->Exec(kOp, "INSERT INTO t VALUES (?1, ?2, ?3)",
                           {int64_t{1} << 40, "text", Blob{bytes}});
  ASSERT_TRUE(inserted.ok()) << inserted.status();
  EXPECT_EQ(*inserted, 1);
  int rows = 0;
  ASSERT_TRUE(db->Query(kOp, "SELECT i, s, typeof(b), length(b) FROM t", {},
                        [&](const Row& row) {
                          ++rows;
                          EXPECT_EQ(row.Int(0), int64_t{1} << 40);
                          EXPECT_EQ(row.Text(1), "text");
                          EXPECT_EQ(row.Text(2), "blob");
                          EXPECT_EQ(row.Int(3), 3);
                          return absl::OkStatus();
                        })
                  .ok());
  EXPECT_EQ(rows, 1);
  auto none = db->Exec(kOp, "UPDATE t SET i = 0 WHERE s = ?1", {"absent"});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(*none, 0);
}

TEST(DbTest, QueryStopsAtTheCallbacksError) {
  auto db = OpenWithTable(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  for (const char* k : {"a", "b", "c"}) {
    ASSERT_TRUE(
        db->Exec(kOp, "INSERT INTO kv (k, v) VALUES (?1, 0)", {k}).ok());
  }
  int seen = 0;
  absl::Status status =
      db->Query(kOp, "SELECT k FROM kv ORDER BY k", {}, [&](const Row&) {
        return ++seen == 2 ? absl::CancelledError("enough") : absl::OkStatus();
      });
  EXPECT_TRUE(absl::IsCancelled(status));
  EXPECT_EQ(seen, 2);
  EXPECT_EQ(Keys(*db).size(), 3u) << "the statement was reset";
}

TEST(DbTest, HasTableSeesAddedSchema) {
  auto db = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  EXPECT_FALSE(*db->HasTable("kv"));
  ASSERT_TRUE(
      db->AddSchema(kOp, "CREATE TABLE IF NOT EXISTS kv (k TEXT);").ok());
  EXPECT_TRUE(*db->HasTable("kv"));
  EXPECT_TRUE(
      db->AddSchema(kOp, "CREATE TABLE IF NOT EXISTS kv (k TEXT);").ok())
      << "schemas are idempotent";
}

TEST(DbTest, UndecodableRecordIsDataLoss) {
  auto db = OpenOrDie(TestDir() + "/lorad.db");
  ASSERT_NE(db, nullptr);
  ASSERT_TRUE(
      db->AddSchema(kOp, "CREATE TABLE IF NOT EXISTS p (proto BLOB);").ok());
  ASSERT_TRUE(
      db->Exec(kOp, "INSERT INTO p VALUES (?1)", {Blob{"\xff\xff\xff"}}).ok());
  auto rows = db->QueryProtos<v1::Dataset>(kOp, "SELECT proto FROM p", {});
  EXPECT_TRUE(absl::IsDataLoss(rows.status())) << rows.status();
}

}  // namespace
}  // namespace lorad::server
