// Observability end to end: a real Prometheus scrapes the real lorad while a
// fine-tune job runs, and every PromQL expression of the shipped Grafana
// dashboard and alert rules evaluates to data through Prometheus's HTTP API.
// The Telemetry gRPC API is checked against the same running daemon.
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client_util.h"
#include "daemon_process.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "prometheus_process.h"

namespace lorad::testing {
namespace {

const std::string kDeploy = std::string(LORAD_SOURCE_DIR) + "/deploy";

std::vector<std::string> DashboardExpressions() {
  std::ifstream in(kDeploy + "/grafana/dashboards/lorad.json");
  nlohmann::json dashboard = nlohmann::json::parse(in);
  std::vector<std::string> out;
  for (const nlohmann::json& panel : dashboard["panels"]) {
    for (const nlohmann::json& target : panel["targets"]) {
      out.push_back(target["expr"].get<std::string>());
    }
  }
  return out;
}

// The `expr:` lines of the rules file (each rule keeps its expression on
// one line).
std::vector<std::string> AlertExpressions() {
  std::ifstream in(kDeploy + "/prometheus/lorad_alerts.yml");
  std::vector<std::string> out;
  std::string line;
  const std::regex expr(R"(^\s*expr:\s*(.+?)\s*$)");
  std::smatch m;
  while (std::getline(in, line)) {
    if (std::regex_match(line, m, expr)) out.push_back(m[1]);
  }
  return out;
}

// The metric selectors inside an expression: lorad_* or up, with matchers.
std::vector<std::string> Selectors(const std::string& promql) {
  const std::regex selector(R"(\b(lorad_[a-z0-9_]+|up)(\{[^}]*\})?)");
  std::vector<std::string> out;
  for (std::sregex_iterator it(promql.begin(), promql.end(), selector), end;
       it != end; ++it) {
    out.push_back(it->str());
  }
  return out;
}

size_t ResultSize(const nlohmann::json& answer) {
  const nlohmann::json& result = answer["data"]["result"];
  return result.is_array() ? result.size() : (result.is_null() ? 0 : 1);
}

TEST(ObservabilityTest, PrometheusScrapesEveryDashboardAndAlertExpression) {
  if (PrometheusBinary().empty()) {
    GTEST_SKIP() << "no prometheus binary (Debian package prometheus)";
  }
  if (!WorkerBuilt()) GTEST_SKIP() << WorkerBinary() << " is not built";
  const std::vector<std::string> dashboard = DashboardExpressions();
  const std::vector<std::string> alerts = AlertExpressions();
  ASSERT_GE(dashboard.size(), 10u);
  ASSERT_GE(alerts.size(), 4u);

  TempDir dir;
  const int metrics_port = FreePort();
  auto daemon = StartWithWorker(
      dir.path() + "/data",
      {absl::StrCat("--metrics_address=127.0.0.1:", metrics_port),
       "--metrics_interval_ms=200"});
  ASSERT_TRUE(daemon.ok()) << daemon.status();
  // The device gauges appear once the poller has asked the worker, which
  // may still be starting when the daemon answers: scrape until they show.
  const std::string device_total =
      "lorad_device_memory_total_bytes{device=\"cpu\"}";
  absl::StatusOr<std::string> metrics;
  const absl::Time first_scrape_deadline = absl::Now() + absl::Seconds(60);
  do {
    metrics = HttpGet(metrics_port, "/metrics");
    ASSERT_TRUE(metrics.ok()) << metrics.status();
    if (metrics->find(device_total) != std::string::npos) break;
    absl::SleepFor(absl::Milliseconds(100));
  } while (absl::Now() < first_scrape_deadline);
  EXPECT_NE(metrics->find(device_total), std::string::npos) << *metrics;

  const std::string config = absl::StrCat(
      "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
      "rule_files:\n  - ",
      kDeploy, "/prometheus/lorad_alerts.yml\n",
      "scrape_configs:\n  - job_name: lorad\n    static_configs:\n"
      "      - targets: [\"127.0.0.1:",
      metrics_port, "\"]\n");
  auto prometheus = PrometheusProcess::Start(dir.path(), config);
  ASSERT_TRUE(prometheus.ok()) << prometheus.status();

  // A generate request (base model) feeds the serving metrics; then a long
  // job runs while the expressions are evaluated.
  Client client((*daemon)->address());
  {
    grpc::ClientContext context;
    v1::GenerateRequest request;
    request.set_prompt("hello");
    request.set_max_new_tokens(4);
    auto reader = client.inference->Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    grpc::Status status = reader->Finish();
    ASSERT_TRUE(status.ok()) << Describe(status);
  }
  v1::Dataset dataset;
  grpc::Status status = UploadPairs(client, &dataset);
  ASSERT_TRUE(status.ok()) << Describe(status);
  v1::FineTuneJob job;
  v1::CreateFineTuneJobRequest request =
      TinyJobRequest(dataset.id(), 100000, 100000);
  request.mutable_hyperparameters()->set_eval_every(5);
  request.mutable_hyperparameters()->set_validation_split(0.25f);
  status = CreateJob(client, request, &job);
  ASSERT_TRUE(status.ok()) << Describe(status);
  const absl::Time deadline = absl::Now() + absl::Minutes(3);
  while (absl::Now() < deadline) {
    ASSERT_TRUE(GetJob(client, job.id(), &job).ok());
    if (job.state() == v1::RUNNING && job.step() >= 2) break;
    ASSERT_NE(job.state(), v1::FAILED) << job.error().message();
    absl::SleepFor(absl::Milliseconds(200));
  }
  ASSERT_EQ(job.state(), v1::RUNNING);

  // Telemetry API on the same daemon, while the job runs.
  auto telemetry = v1::Telemetry::NewStub(client.channel);
  {
    grpc::ClientContext context;
    v1::TelemetrySnapshot snapshot;
    status =
        telemetry->Snapshot(&context, v1::GetTelemetryRequest(), &snapshot);
    ASSERT_TRUE(status.ok()) << Describe(status);
    EXPECT_GT(snapshot.time_unix_ms(), 0);
    EXPECT_EQ(snapshot.worker_status(), "ok");
    EXPECT_GT(snapshot.worker_memory().rss_bytes(), 0);
    EXPECT_GT(snapshot.devices().host().total_bytes(), 0);
    if (snapshot.devices().gpus_size() == 0) {
      EXPECT_EQ(snapshot.devices().device(), "cpu");
    }
    EXPECT_EQ(snapshot.breakdown().job_id(), job.id());
    EXPECT_GT(snapshot.breakdown().base_bytes(), 0);
    EXPECT_GT(snapshot.breakdown().optimizer_bytes(), 0);
    std::set<std::string> roles;
    for (const v1::ProcessMemory& p : snapshot.processes()) {
      roles.insert(p.role());
      EXPECT_GT(p.rss_bytes(), 0) << p.role();
    }
    EXPECT_EQ(roles, (std::set<std::string>{"daemon", "worker"}));
  }
  {
    grpc::ClientContext context;
    v1::StreamTelemetryRequest stream_request;
    stream_request.set_interval_ms(100);
    stream_request.set_count(3);
    auto reader = telemetry->Stream(&context, stream_request);
    std::vector<int64_t> times;
    v1::TelemetrySnapshot snapshot;
    while (reader->Read(&snapshot)) times.push_back(snapshot.time_unix_ms());
    status = reader->Finish();
    ASSERT_TRUE(status.ok()) << Describe(status);
    ASSERT_EQ(times.size(), 3u);
    EXPECT_GE(times[2] - times[0], 200);
  }
  {
    grpc::ClientContext context;
    v1::StreamTelemetryRequest bad;
    bad.set_interval_ms(-5);
    auto reader = telemetry->Stream(&context, bad);
    v1::TelemetrySnapshot snapshot;
    EXPECT_FALSE(reader->Read(&snapshot));
    EXPECT_EQ(reader->Finish().error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }

  // Every dashboard expression, and every selector inside the alert
  // expressions, returns data; every alert expression parses and evaluates.
  std::vector<std::string> must_have_data = dashboard;
  for (const std::string& alert : alerts) {
    for (const std::string& s : Selectors(alert)) must_have_data.push_back(s);
  }
  std::set<std::string> missing(must_have_data.begin(), must_have_data.end());
  const absl::Time query_deadline = absl::Now() + absl::Seconds(90);
  std::string last_error;
  while (!missing.empty() && absl::Now() < query_deadline) {
    for (auto it = missing.begin(); it != missing.end();) {
      absl::StatusOr<nlohmann::json> answer = (*prometheus)->Query(*it);
      if (answer.ok() && ResultSize(*answer) > 0) {
        it = missing.erase(it);
      } else {
        if (!answer.ok()) last_error = std::string(answer.status().message());
        ++it;
      }
    }
    if (!missing.empty()) absl::SleepFor(absl::Seconds(1));
  }
  for (const std::string& expr : missing) {
    ADD_FAILURE() << "no data for: " << expr << " (last error: " << last_error
                  << ")";
  }
  for (const std::string& alert : alerts) {
    absl::StatusOr<nlohmann::json> answer = (*prometheus)->Query(alert);
    EXPECT_TRUE(answer.ok()) << alert << ": " << answer.status();
  }
  // The scrape is healthy and the running job's loss is a real number.
  absl::StatusOr<nlohmann::json> up = (*prometheus)->Query("up{job=\"lorad\"}");
  ASSERT_TRUE(up.ok()) << up.status();
  ASSERT_EQ(ResultSize(*up), 1u);
  EXPECT_EQ((*up)["data"]["result"][0]["value"][1], "1");
  absl::StatusOr<nlohmann::json> loss =
      (*prometheus)
          ->Query(absl::StrCat("lorad_job_loss{job_id=\"", job.id(), "\"}"));
  ASSERT_TRUE(loss.ok()) << loss.status();
  ASSERT_EQ(ResultSize(*loss), 1u);
  EXPECT_GT(
      std::stod((*loss)["data"]["result"][0]["value"][1].get<std::string>()),
      0.0);

  grpc::ClientContext cancel_context;
  v1::CancelFineTuneJobRequest cancel;
  cancel.set_job_id(job.id());
  v1::FineTuneJob cancelled;
  client.fine_tuning->CancelJob(&cancel_context, cancel, &cancelled);
}

}  // namespace
}  // namespace lorad::testing
