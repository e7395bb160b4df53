#include "store/adapter_store.h"

#include <filesystem>
#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "store/db.h"
#include "test_dir.h"

namespace lorad::server {
namespace {

std::string TestDb() {
  return FreshTestDir("adapter_store_test") + "/lorad.db";
}

TEST(AdapterStoreTest, PutGetListDelete) {
  auto db = Db::Open(TestDb());
  ASSERT_TRUE(db.ok()) << db.status();
  auto store = AdapterStore::Open(db->get());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_TRUE(absl::IsNotFound((*store)->GetAdapter("a").status()));
  v1::Adapter a;
  a.set_name("b");
  a.set_version(1);
  ASSERT_TRUE((*store)->PutAdapter(a).ok());
  a.set_name("a");
  ASSERT_TRUE((*store)->PutAdapter(a).ok());
  a.set_version(2);
  ASSERT_TRUE((*store)->PutAdapter(a).ok());  // replaces
  auto got = (*store)->GetAdapter("a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->version(), 2);
  auto all = (*store)->ListAdapters();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].name(), "a");
  EXPECT_EQ((*all)[1].name(), "b");
  EXPECT_TRUE((*store)->DeleteAdapter("a").ok());
  absl::Status again = (*store)->DeleteAdapter("a");
  EXPECT_TRUE(absl::IsNotFound(again));
  EXPECT_NE(again.message().find("adapter a"), absl::string_view::npos);
  EXPECT_EQ((*store)->ListAdapters()->size(), 1u);
}

// created_registry() says whether this open added the adapters table, i.e.
// whether the file comes from a lorad without the registry.
TEST(AdapterStoreTest, CreatedRegistryOnlyOnTheFirstOpen) {
  const std::string path = TestDb();
  {
    auto db = Db::Open(path);
    ASSERT_TRUE(db.ok()) << db.status();
    auto store = AdapterStore::Open(db->get());
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_TRUE((*store)->created_registry());
  }
  auto db = Db::Open(path);
  ASSERT_TRUE(db.ok()) << db.status();
  auto store = AdapterStore::Open(db->get());
  ASSERT_TRUE(store.ok()) << store.status();
  EXPECT_FALSE((*store)->created_registry());
}

}  // namespace
}  // namespace lorad::server
