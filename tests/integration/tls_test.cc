// TLS and mTLS on the gRPC port and on /metrics, with a CA, server and
// client certificates made by the openssl CLI for this run.
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "auth_util.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "lorad/v1/lorad.grpc.pb.h"

namespace lorad::testing {
namespace {

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// ca.pem/ca.key, server.pem/server.key (for 127.0.0.1) and
// client.pem/client.key, all signed by the CA, under `dir`.
void MakeCertificates(const std::string& dir) {
  const std::string script = absl::StrCat(
      "set -e; cd ", dir,
      "; openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem"
      " -days 1 -subj /CN=lorad-test-ca"
      "; openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr"
      " -subj /CN=127.0.0.1"
      "; printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > server.ext"
      "; openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key"
      " -CAcreateserial -out server.pem -days 1 -extfile server.ext"
      "; openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr"
      " -subj /CN=lorad-test-client"
      "; openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key"
      " -CAcreateserial -out client.pem -days 1");
  CommandResult made = RunCommand(script);
  ASSERT_EQ(made.exit_code, 0) << made.output;
}

grpc::Status List(const std::string& address,
                  const std::shared_ptr<grpc::ChannelCredentials>& creds) {
  auto stub = v1::Datasets::NewStub(grpc::CreateChannel(address, creds));
  v1::ListDatasetsResponse response;
  return stub->List(AuthContext("", absl::Seconds(20)).get(), {}, &response);
}

// lorad with MakeCertificates' server certificate, requiring client
// certificates signed by its CA, data and log under `dir`.
absl::StatusOr<std::unique_ptr<DaemonProcess>> StartMutualTls(
    const std::string& dir, const std::string& worker) {
  return StartLogged(
      dir + "/data",
      {"--worker_binary=" + worker, "--tls_cert=" + dir + "/server.pem",
       "--tls_key=" + dir + "/server.key",
       "--tls_client_ca=" + dir + "/ca.pem"},
      dir + "/lorad.log");
}

TEST(TlsTest, MutualTlsAcceptsOnlyClientsWithACertificate) {
  if (RunCommand("openssl version").exit_code != 0) {
    GTEST_SKIP() << "no openssl CLI";
  }
  TempDir dir;
  MakeCertificates(dir.path());
  const std::string& d = dir.path();
  auto daemon = StartMutualTls(d, "/nonexistent");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string address = (*daemon)->address();

  grpc::SslCredentialsOptions with_cert;
  with_cert.pem_root_certs = Read(d + "/ca.pem");
  with_cert.pem_cert_chain = Read(d + "/client.pem");
  with_cert.pem_private_key = Read(d + "/client.key");
  grpc::Status ok = List(address, grpc::SslCredentials(with_cert));
  EXPECT_TRUE(ok.ok()) << Describe(ok);

  grpc::SslCredentialsOptions without_cert;
  without_cert.pem_root_certs = Read(d + "/ca.pem");
  grpc::Status no_cert = List(address, grpc::SslCredentials(without_cert));
  EXPECT_EQ(no_cert.error_code(), grpc::StatusCode::UNAVAILABLE)
      << Describe(no_cert);

  grpc::Status plaintext = List(address, grpc::InsecureChannelCredentials());
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE)
      << Describe(plaintext);

  // loractl with the same files, and without its certificate.
  const std::string loractl =
      absl::StrCat(LORAD_BINARY_DIR, "/client/loractl --address ", address,
                   " --tls-ca ", d, "/ca.pem");
  CommandResult listed = RunCommand(absl::StrCat(loractl, " --tls-cert ", d,
                                                 "/client.pem --tls-key ", d,
                                                 "/client.key datasets"));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  CommandResult refused = RunCommand(loractl + " datasets");
  EXPECT_NE(refused.exit_code, 0) << refused.output;

  // /metrics: the same certificate, and a client certificate required.
  const std::string url = MetricsUrl(d + "/lorad.log");
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;
  const std::string curl =
      absl::StrCat("curl -s --cacert ", d, "/ca.pem ", url, " ");
  CommandResult scraped = RunCommand(
      absl::StrCat(curl, "--cert ", d, "/client.pem --key ", d, "/client.key"));
  EXPECT_EQ(scraped.exit_code, 0) << scraped.output;
  EXPECT_NE(scraped.output.find("lorad_"), std::string::npos)
      << scraped.output.substr(0, 500);
  EXPECT_NE(RunCommand(curl).exit_code, 0) << "scraped without a certificate";
}

TEST(TlsTest, ServerOnlyTlsWithTokens) {
  if (RunCommand("openssl version").exit_code != 0) {
    GTEST_SKIP() << "no openssl CLI";
  }
  TempDir dir;
  MakeCertificates(dir.path());
  const std::string& d = dir.path();
  WriteTokensFile(d + "/tokens", {{"tok-r", "rita reader"}});
  auto daemon = StartLogged(
      d + "/data",
      {"--worker_binary=/nonexistent", "--tls_cert=" + d + "/server.pem",
       "--tls_key=" + d + "/server.key", "--auth_tokens_file=" + d + "/tokens",
       "--metrics_require_auth"},
      d + "/lorad.log");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string loractl =
      absl::StrCat(LORAD_BINARY_DIR, "/client/loractl --address ",
                   (*daemon)->address(), " --tls-ca ", d, "/ca.pem");
  CommandResult listed =
      RunCommand(absl::StrCat("LORAD_TOKEN=tok-r ", loractl, " datasets"));
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  CommandResult bad =
      RunCommand(absl::StrCat(loractl, " --token not-the-token datasets"));
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_NE(bad.output.find("UNAUTHENTICATED"), std::string::npos)
      << bad.output;
  EXPECT_EQ(bad.output.find("not-the-token"), std::string::npos) << bad.output;

  // /metrics over TLS with basic auth; plain HTTP gets nothing.
  const std::string url = MetricsUrl(d + "/lorad.log");
  ASSERT_EQ(url.rfind("https://", 0), 0u) << url;
  const std::string curl = absl::StrCat(
      "curl -s -o /dev/null -w '%{http_code}' --cacert ", d, "/ca.pem ");
  EXPECT_EQ(RunCommand(curl + url).output, "401");
  EXPECT_EQ(RunCommand(curl + "-u rita:wrong " + url).output, "401");
  EXPECT_EQ(RunCommand(curl + "-u rita:tok-r " + url).output, "200");
  CommandResult body = RunCommand(
      absl::StrCat("curl -s --cacert ", d, "/ca.pem -u rita:tok-r ", url));
  EXPECT_NE(body.output.find("# TYPE lorad_"), std::string::npos)
      << body.output.substr(0, 500);
  const std::string plain =
      "http://" + url.substr(std::string("https://").size());
  EXPECT_NE(RunCommand(curl + "-u rita:tok-r " + plain).output, "200");
}

// The OpenAI-compatible HTTP API is served with the same certificate and
// the same client-certificate rule; with no worker, readiness and
// generation (the worker cannot start) answer 503 with Retry-After.
TEST(TlsTest, HttpApiSharesTheCertificatesAndSays503WithoutAWorker) {
  if (RunCommand("openssl version").exit_code != 0) {
    GTEST_SKIP() << "no openssl CLI";
  }
  TempDir dir;
  MakeCertificates(dir.path());
  const std::string& d = dir.path();
  // A worker that exits at once: lorad serves, the worker never gets ready.
  auto daemon = StartMutualTls(d, "/bin/false");
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  const std::string url = "https://" + (*daemon)->http_address();
  const std::string with_cert =
      absl::StrCat("curl -s -i --max-time 60 --cacert ", d, "/ca.pem --cert ",
                   d, "/client.pem --key ", d, "/client.key ");
  CommandResult health = RunCommand(with_cert + url + "/health");
  EXPECT_EQ(health.exit_code, 0) << health.output;
  EXPECT_NE(health.output.find("200"), std::string::npos) << health.output;
  CommandResult no_cert = RunCommand(absl::StrCat(
      "curl -s --max-time 60 --cacert ", d, "/ca.pem ", url, "/health"));
  EXPECT_NE(no_cert.exit_code, 0) << no_cert.output;
  CommandResult plain = RunCommand(absl::StrCat(
      "curl -s --max-time 60 http://", (*daemon)->http_address(), "/health"));
  EXPECT_EQ(plain.output.find("\"ok\""), std::string::npos) << plain.output;

  CommandResult ready = RunCommand(with_cert + url + "/ready");
  EXPECT_NE(ready.output.find("HTTP/1.1 503"), std::string::npos)
      << ready.output;
  CommandResult chat =
      RunCommand(with_cert + url +
                 "/v1/chat/completions -d '{\"model\":\"tiny\",\"messages\":"
                 "[{\"role\":\"user\",\"content\":\"hi\"}]}'");
  EXPECT_NE(chat.output.find("HTTP/1.1 503"), std::string::npos) << chat.output;
  EXPECT_NE(chat.output.find("Retry-After:"), std::string::npos) << chat.output;
  EXPECT_NE(chat.output.find("\"type\":\"service_unavailable_error\""),
            std::string::npos)
      << chat.output;
}

}  // namespace
}  // namespace lorad::testing
