// Connection management on the real daemon: --max_connection_idle_ms closes
// a client's idle connection, and --keepalive_time_ms/--keepalive_timeout_ms
// drop a peer that stops answering HTTP/2 pings (one that vanished without
// closing its socket), even when it has no call open.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "auth_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "gtest/gtest.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {
namespace {

std::shared_ptr<grpc::Channel> ReadyChannel(const std::string& address) {
  std::shared_ptr<grpc::Channel> channel =
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  v1::ListDatasetsResponse response;
  grpc::Status status = v1::Datasets::NewStub(channel)->List(
      AuthContext("").get(), {}, &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);
  return channel;
}

TEST(ConnectionTest, IdleConnectionsAreClosedAfterMaxConnectionIdle) {
  TempDir dir;
  auto daemon = StartLogged(
      dir.path() + "/data",
      {"--worker_binary=/nonexistent", "--max_connection_idle_ms=300"},
      dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::shared_ptr<grpc::Channel> channel = ReadyChannel((*daemon)->address());
  // The server's GOAWAY moves the channel out of READY; a minute is far
  // beyond the 300 ms setting.
  ASSERT_TRUE(channel->WaitForStateChange(
      GRPC_CHANNEL_READY, absl::ToChronoTime(absl::Now() + absl::Minutes(1))));
  EXPECT_NE(channel->GetState(false), GRPC_CHANNEL_READY);
}

TEST(ConnectionTest, WithoutMaxConnectionIdleAnIdleConnectionStays) {
  TempDir dir;
  auto daemon =
      StartLogged(dir.path() + "/data", {"--worker_binary=/nonexistent"},
                  dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  std::shared_ptr<grpc::Channel> channel = ReadyChannel((*daemon)->address());
  // Nothing closes it: still READY after ten times the other test's setting.
  EXPECT_FALSE(channel->WaitForStateChange(
      GRPC_CHANNEL_READY,
      absl::ToChronoTime(absl::Now() + absl::Milliseconds(3000))));
}

// A raw TCP peer that opens an HTTP/2 connection and then never answers.
class SilentPeer {
 public:
  explicit SilentPeer(const std::string& address) {
    const size_t colon = address.rfind(':');
    int port = 0;
    EXPECT_TRUE(absl::SimpleAtoi(address.substr(colon + 1), &port));
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(static_cast<uint16_t>(port));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ =
        ::connect(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    // The client preface and an empty SETTINGS frame.
    static const char kPreface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const unsigned char settings[9] = {0, 0, 0, 4, 0, 0, 0, 0, 0};
    std::string hello(kPreface, sizeof(kPreface) - 1);
    hello.append(reinterpret_cast<const char*>(settings), sizeof(settings));
    connected_ = connected_ && ::write(fd_, hello.data(), hello.size()) ==
                                   static_cast<ssize_t>(hello.size());
  }
  ~SilentPeer() { ::close(fd_); }
  bool connected() const { return connected_; }

  // Reads HTTP/2 frames until the server closes the connection or `timeout`
  // passes; true when it closed. Counts the PING frames it sent.
  bool ReadUntilClosed(absl::Duration timeout, int* pings) {
    const absl::Time deadline = absl::Now() + timeout;
    std::string buffer;
    while (absl::Now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      const int ms = static_cast<int>(
          absl::ToInt64Milliseconds(deadline - absl::Now()) + 1);
      if (::poll(&p, 1, ms) <= 0) continue;
      char chunk[4096];
      const ssize_t n = ::read(fd_, chunk, sizeof(chunk));
      if (n <= 0) return true;  // EOF or reset: the server dropped us
      buffer.append(chunk, static_cast<size_t>(n));
      while (buffer.size() >= 9) {
        const auto* h = reinterpret_cast<const unsigned char*>(buffer.data());
        const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
        if (buffer.size() < 9 + length) break;
        if (h[3] == 6 && (h[4] & 1) == 0) ++*pings;  // PING, not an ACK
        buffer.erase(0, 9 + length);
      }
    }
    return false;
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

TEST(ConnectionTest, APeerThatStopsAnsweringPingsIsDropped) {
  TempDir dir;
  auto daemon =
      StartLogged(dir.path() + "/data",
                  {"--worker_binary=/nonexistent", "--keepalive_time_ms=200",
                   "--keepalive_timeout_ms=200"},
                  dir.path() + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  SilentPeer peer((*daemon)->address());
  ASSERT_TRUE(peer.connected());
  int pings = 0;
  EXPECT_TRUE(peer.ReadUntilClosed(absl::Minutes(1), &pings));
  EXPECT_GE(pings, 1) << "the server closed the connection without pinging";
  // The daemon still serves everyone else.
  ReadyChannel((*daemon)->address());
}

}  // namespace
}  // namespace lorad::testing
