// `kbuild serve` over real HTTP on 127.0.0.1, with inputs no honest node sends: every field
// and path segment hostile in turn, bodies too large or not JSON, clients that send a byte at
// a time, no token, too many requests, a full queue, SIGTERM. Each must get a clear 4xx (or
// 503) and leave the server answering. No build runs here: the Debian mirror the service is
// given accepts connections and never answers, so a target stays building as long as needed.
#include "serve_client.h"
#include "test_util.h"

#include <kbuild/digest.hpp>

#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>

#include <gtest/gtest.h>

#include <atomic>
#include <csignal>
#include <sstream>
#include <thread>

namespace fs = std::filesystem;
using namespace kbuild;
using test::http;
using test::raw_http;
using test::Reply;
using test::status_of;
using Clock = std::chrono::steady_clock;
using namespace std::string_literals;

namespace {

const std::string kSha(64, 'b');

class ServiceHttp : public ::testing::Test {
protected:
    // The [serve] table; the module source and the silent mirror are added.
    std::string config(const std::string& serve) const {
        return "[serve]\n" + serve + "\n[serve.modules.hello]\npath = \"" +
               (test::source_dir() / "examples/hello").string() +
               "\"\nversion = \"1.0.0\"\n\n[debian]\nmirror = [\"http://127.0.0.1:" +
               std::to_string(silent_.address().port()) + "\"]\noption = [\"suites=bookworm\"]\n";
    }

    std::unique_ptr<test::ServeProcess> serve(const std::string& serve_table, std::vector<std::string> args = {}) {
        // No rate unless a test sets one: the tests send many POSTs from one address.
        const std::string table = serve_table.find("posts_per_minute") == std::string::npos
                                      ? "posts_per_minute = 0\n" + serve_table
                                      : serve_table;
        return std::make_unique<test::ServeProcess>(dir_.path(), config(table), dir_ / "cache", args);
    }

    static Reply post(int port, const std::string& body, const std::map<std::string, std::string>& headers = {}) {
        return http(port, "POST", "/v1/module", body, headers);
    }

    static std::string valid_location(const std::string& release = "6.1.0-28-amd64") {
        return "/v1/module/debian/x86_64/1.0.0/" + release + "/1/" + kSha + "/hello.ko";
    }

    static void expect_alive(test::ServeProcess& server) {
        EXPECT_TRUE(server.running()) << server.log();
        EXPECT_EQ(http(server.port(), "GET", "/v1/health").status, 200);
    }

    test::TempDir dir_;
    // Accepts connections (the kernel does) and never answers: a crawl through it hangs.
    Poco::Net::ServerSocket silent_{Poco::Net::SocketAddress("127.0.0.1", 0), 64};
};

}  // namespace

TEST_F(ServiceHttp, AnswersHealthAndMetricsAndNamesWhatItDoesNotServe) {
    auto server = serve("");
    const Reply health = http(server->port(), "GET", "/v1/health");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(health.json()["status"], "ok");
    const Json metrics = http(server->port(), "GET", "/v1/metrics").json();
    for (const char* key : {"queue_length", "building", "builds_done", "builds_failed", "mean_build_seconds"})
        EXPECT_TRUE(metrics.contains(key)) << key << " in " << metrics.dump();
    // And for Prometheus, in its text format.
    const Reply scraped = http(server->port(), "GET", "/metrics");
    EXPECT_EQ(scraped.status, 200);
    EXPECT_EQ(scraped.header("content-type"), "text/plain; version=0.0.4; charset=utf-8");
    for (const char* line : {"# TYPE kbuild_serve_targets gauge\n", "kbuild_serve_targets{state=\"queued\"} 0\n",
                             "kbuild_serve_builds_total{result=\"failed\"} 0\n",
                             "# TYPE kbuild_serve_requests_total counter\n", "kbuild_serve_request_timeouts_total 0\n"})
        EXPECT_NE(scraped.body.find(line), std::string::npos) << line << " in\n" << scraped.body;
    EXPECT_EQ(test::lines_with(scraped.body, "# HELP kbuild_serve_targets "), 1) << scraped.body;
    EXPECT_EQ(http(server->port(), "GET", "/").status, 404);
    EXPECT_EQ(http(server->port(), "GET", "/v1/modules").status, 404);
    const Reply wrong = http(server->port(), "DELETE", "/v1/module");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.header("allow"), "POST");
    EXPECT_EQ(http(server->port(), "POST", "/v1/health", "{}").status, 405);
    EXPECT_EQ(http(server->port(), "PUT", valid_location(), "x").status, 405);
    EXPECT_EQ(http(server->port(), "GET", valid_location()).status, 404);
}

TEST_F(ServiceHttp, AModuleVersionIsNeededOnlyWhenThereAreSeveralSources) {
    auto server = serve("\n[serve.modules.other]\npath = \"" + (test::source_dir() / "examples/hello").string() +
                        "\"\nversion = \"2.0.0\"\n");
    Json ask = Json::parse(test::ModuleAsk{"debian", "x86_64", "6.1.0-28-amd64"}.body());
    ask.erase("moduleVersion");
    const Reply r = post(server->port(), ask.dump());
    EXPECT_EQ(r.status, 400) << r.body;
    EXPECT_EQ(r.json()["error"], "moduleVersion: missing") << r.body;
}

TEST_F(ServiceHttp, EveryFieldIsCheckedAndNamedWhenBad) {
    auto server = serve("");
    const test::ModuleAsk good{"debian", "x86_64", "6.1.0-28-amd64"};
    const Json base = Json::parse(good.body());
    const std::vector<std::string> fields = {"buildType",     "architecture",  "kernelrelease",
                                             "kernelversion", "moduleVersion", "kernelConfigData"};
    const std::vector<std::string> hostile = {"../../etc/passwd",
                                              "..",
                                              "6.1.0/../../x",
                                              std::string("6.1.0\0x", 7),
                                              "$(reboot)",
                                              "",
                                              std::string(300, '1') + ".1",
                                              "6.1.0-28-amd64\n1"};
    for (const auto& field : fields) {
        Json missing = base;
        missing.erase(field);
        Reply r = post(server->port(), missing.dump());
        if (field == "kernelversion" || field == "moduleVersion") {
            // Left out, as the Falco build service allows: "1", and the one module source's.
            EXPECT_EQ(r.status, 202) << field << ": " << r.body;
            EXPECT_EQ(r.header("location"),
                      "/v1/module/debian/x86_64/1.0.0/6.1.0-28-amd64/1/" + sha256_text(good.config) + "/hello.ko");
        } else {
            EXPECT_EQ(r.status, 400) << field;
            EXPECT_EQ(r.json()["field"], field) << r.body;
            EXPECT_EQ(r.json()["error"], field + ": missing");
        }

        Json number = base;
        number[field] = 7;
        r = post(server->port(), number.dump());
        EXPECT_EQ(r.status, 400) << field;
        EXPECT_EQ(r.json()["error"], field + ": not a string");

        for (const auto& value : hostile) {
            Json bad = base;
            bad[field] = value;
            r = post(server->port(), bad.dump());
            EXPECT_EQ(r.status, 400) << field << " = " << value << ": " << r.body;
            EXPECT_EQ(r.json()["field"], field) << r.body;
            EXPECT_EQ(r.json()["error"].get<std::string>().rfind(field + ": ", 0), 0u) << r.body;
        }
    }
    Json other = base;
    other["buildType"] = "plan9";
    Reply r = post(server->port(), other.dump());
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.json()["error"].get<std::string>().find("unknown 'plan9' (known: "), std::string::npos) << r.body;
    EXPECT_NE(r.json()["error"].get<std::string>().find("debian"), std::string::npos) << r.body;
    other["buildType"] = "ubuntu";  // a flavour is needed
    EXPECT_EQ(post(server->port(), other.dump()).status, 400);
    other["buildType"] = "ubuntu-aws";  // known, its crawl is not the point here
    EXPECT_NE(post(server->port(), other.dump()).status, 400);
    other = base;
    other["moduleVersion"] = "9.9.9";
    r = post(server->port(), other.dump());
    EXPECT_EQ(r.status, 400);
    EXPECT_NE(r.json()["error"].get<std::string>().find("(known: 1.0.0)"), std::string::npos) << r.body;
    for (const char* config : {"Zm9v!", "Zm9", "Zm9v\nZm9v", "Zh=="}) {
        other = base;
        other["kernelConfigData"] = config;
        r = post(server->port(), other.dump());
        EXPECT_EQ(r.status, 400) << config;
        EXPECT_EQ(r.json()["field"], "kernelConfigData");
    }
    for (const std::string& body :
         std::vector<std::string>{"", "not json", "[1,2]", "\"text\"", "{\"buildType\":", "{\"a\":\"\xff\"}"}) {
        r = post(server->port(), body);
        EXPECT_EQ(r.status, 400) << body;
        EXPECT_EQ(r.json()["field"], "body") << body;
    }
    // Of all those requests, two became targets: the good one (asked twice, with a default
    // each time) and the ubuntu-aws one.
    const Json m = http(server->port(), "GET", "/v1/metrics").json();
    EXPECT_EQ(m["queue_length"].get<int>() + m["building"].get<int>() + m["targets_built"].get<int>() +
                  m["targets_failed"].get<int>(),
              2)
        << m.dump();
    expect_alive(*server);
}

TEST_F(ServiceHttp, PathTraversalInAnySegmentIsRefused) {
    auto server = serve("");
    const std::vector<std::string> segments = {"debian", "x86_64", "1.0.0", "6.1.0-28-amd64", "1", kSha, "hello.ko"};
    const std::vector<std::string> hostile = {"..", ".", "%2e%2e", "..%2f..%2fetc", "", "..\\..", "a b", "~root"};
    for (size_t i = 0; i < segments.size(); ++i) {
        for (const auto& bad : hostile) {
            std::string path = "/v1/module";
            for (size_t k = 0; k < segments.size(); ++k) path += "/" + (k == i ? bad : segments[k]);
            const std::string answer =
                raw_http(server->port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
            const int status = status_of(answer);
            EXPECT_TRUE(status == 400 || status == 404) << path << ": " << answer;
            if (status == 400 && bad != "a b") {
                EXPECT_NE(answer.find("\"field\""), std::string::npos) << answer;
            }
        }
    }
    for (const std::string& path : std::vector<std::string>{
             "/v1/module/../../../../etc/passwd", "/v1/module/..%2f..%2f..%2fetc%2fpasswd", "/v1/../v1/health",
             "/v1/module/" + std::string(4000, 'a'), "//etc/passwd", "http://127.0.0.1/etc/passwd"}) {
        const int status =
            status_of(raw_http(server->port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
        EXPECT_TRUE(status == 400 || status == 404) << path << ": " << status;
    }
    // A NUL in the request target, a request line that is not one, a header too long.
    for (const std::string& request :
         {"GET /v1/module/\0/x HTTP/1.1\r\nHost: x\r\n\r\n"s, "\x16\x03\x01\x02\x00garbage\r\n\r\n"s,
          "GET /v1/health HTTP/1.1\r\nX: " + std::string(20000, 'a') + "\r\n\r\n"}) {
        const int status = status_of(raw_http(server->port(), request));
        EXPECT_TRUE(status >= 400 && status < 500) << status;
    }
    expect_alive(*server);
}

TEST_F(ServiceHttp, BodiesOverTheLimitGet413) {
    auto server = serve("max_body = 65536\n");
    // Said up front: refused before a byte of it is read.
    std::string answer = raw_http(server->port(),
                                  "POST /v1/module HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 104857600\r\n\r\n{");
    EXPECT_EQ(status_of(answer), 413) << answer;
    EXPECT_NE(answer.find("larger than 65536 bytes"), std::string::npos) << answer;
    // Sent whole, with a length...
    test::ModuleAsk big{"debian", "x86_64", "6.1.0-28-amd64"};
    big.config = std::string(70000, 'y');
    EXPECT_EQ(post(server->port(), big.body()).status, 413);
    // ...or chunked, with none.
    std::string chunked = "POST /v1/module HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
    for (int i = 0; i < 40; ++i) chunked += "1000\r\n" + std::string(4096, 'z') + "\r\n";
    chunked += "0\r\n\r\n";
    answer = raw_http(server->port(), chunked);
    EXPECT_EQ(status_of(answer), 413) << answer.substr(0, 200);
    // Just under the limit: read, and judged on its content.
    big.config = std::string(40000, 'y');
    EXPECT_EQ(post(server->port(), big.body()).status, 202);
    expect_alive(*server);
}

TEST_F(ServiceHttp, PipelinedRequestsContinueAndHugeHeadersAreAnsweredAsHttpSays) {
    auto server = serve("request_timeout = 2\n");
    // Three requests in one write, the last closing: three answers, in order.
    const std::string three = raw_http(server->port(),
                                       "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n"
                                       "GET /v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const auto first = three.find("HTTP/1.1 200 OK"), second = three.find("HTTP/1.1 404 Not Found");
    EXPECT_NE(first, std::string::npos) << three;
    EXPECT_NE(second, std::string::npos) << three;
    EXPECT_LT(first, second) << three;
    // 404 closes its connection: the third is never read.
    EXPECT_EQ(three.find("HTTP/1.1 200 OK", second), std::string::npos) << three;
    // Kept alive past the deadline of the first request: the second is judged on its own.
    Poco::Net::StreamSocket socket(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(server->port())));
    const std::string health = "GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n";
    socket.sendBytes(health.data(), static_cast<int>(health.size()));
    char buffer[4096];
    EXPECT_EQ(status_of(std::string(buffer, static_cast<size_t>(socket.receiveBytes(buffer, sizeof buffer)))), 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(2500));
    socket.sendBytes(health.data(), static_cast<int>(health.size()));
    EXPECT_EQ(status_of(std::string(buffer, static_cast<size_t>(socket.receiveBytes(buffer, sizeof buffer)))), 200);
    // curl's Expect: 100-continue before a body: "go on", then the answer.
    const std::string body = test::ModuleAsk{"debian", "x86_64", "6.1.0-28-amd64"}.body();
    const std::string expect = raw_http(server->port(),
                                        "POST /v1/module HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
                                        "Content-Length: " +
                                            std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    EXPECT_EQ(expect.rfind("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\n", 0), 0u) << expect;
    // Headers past 16 KiB: 431, said.
    const std::string huge = raw_http(
        server->port(), "GET /v1/health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'b') + "\r\n\r\n");
    EXPECT_EQ(status_of(huge), 431) << huge.substr(0, 200);
    EXPECT_NE(huge.find("headers: larger than 16384 bytes"), std::string::npos) << huge.substr(0, 300);
    expect_alive(*server);
}

TEST_F(ServiceHttp, SlowClientsGet408AndDoNotHoldTheServer) {
    auto server = serve("request_timeout = 2\nmax_threads = 16\n");
    const int port = server->port();
    // Slowloris: headers a line at a time, never finished; and a body that stops short.
    std::vector<Poco::Net::StreamSocket> slow;
    for (int i = 0; i < 12; ++i) {
        slow.emplace_back(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)));
        const std::string start = "GET /v1/health HTTP/1.1\r\nHost: x\r\n";
        slow.back().sendBytes(start.data(), static_cast<int>(start.size()));
    }
    slow.emplace_back(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(port)));
    const std::string partial = "POST /v1/module HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"buildType\"";
    slow.back().sendBytes(partial.data(), static_cast<int>(partial.size()));

    std::atomic<bool> trickling{true};
    std::thread trickle([&] {
        while (trickling) {
            for (size_t i = 0; i + 1 < slow.size(); ++i) {
                try {
                    slow[i].sendBytes("X-Slow: 1\r\n", 11, MSG_NOSIGNAL);
                } catch (const Poco::Exception&) {}
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(300));
        }
    });
    // The others are served at once meanwhile.
    for (int i = 0; i < 5; ++i) {
        const auto started = Clock::now();
        EXPECT_EQ(http(port, "GET", "/v1/health").status, 200);
        EXPECT_LT(Clock::now() - started, std::chrono::milliseconds(500));
        std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    // Each slow one has its 408 and is closed by the deadline (2 s) and a watch period.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    for (auto& socket : slow) {
        std::string got;
        char buffer[512];
        socket.setReceiveTimeout(Poco::Timespan(0, 100000));
        while (Clock::now() < deadline) {
            try {
                const int n = socket.receiveBytes(buffer, sizeof buffer);
                if (n <= 0) break;
                got.append(buffer, static_cast<size_t>(n));
            } catch (const Poco::TimeoutException&) {
            } catch (const Poco::Exception&) {
                break;
            }
        }
        EXPECT_EQ(status_of(got), 408) << got;
    }
    trickling = false;
    trickle.join();
    EXPECT_GE(http(port, "GET", "/v1/metrics").json()["request_timeouts"].get<int>(), 13);
    expect_alive(*server);
}

TEST_F(ServiceHttp, MoreSlowClientsThanThreadsDelayOthersAtMostTheirDeadline) {
    auto server = serve("request_timeout = 1\nmax_threads = 8\n");
    std::vector<Poco::Net::StreamSocket> slow;
    for (int i = 0; i < 24; ++i) {
        slow.emplace_back(Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(server->port())));
        slow.back().sendBytes("GET /v1/hea", 11);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto started = Clock::now();
    EXPECT_EQ(http(server->port(), "GET", "/v1/health").status, 200);
    // 24 slow clients on 8 threads: three rounds of a 1 s deadline, and the watch's slack.
    EXPECT_LT(Clock::now() - started, std::chrono::seconds(6));
    expect_alive(*server);
}

TEST_F(ServiceHttp, PostNeedsTheTokenAndEachClientHasARate) {
    test::write_file(dir_ / "token", "s3cret-token\n");
    auto server = serve("posts_per_minute = 3\ntoken_file = \"" + (dir_ / "token").string() + "\"\n");
    const std::string body = test::ModuleAsk{"debian", "x86_64", "6.1.0-28-amd64", "1", "../1"}.body();
    Reply r = post(server->port(), body);
    EXPECT_EQ(r.status, 401);
    EXPECT_EQ(r.header("www-authenticate"), "Bearer");
    EXPECT_EQ(post(server->port(), body, {{"Authorization", "Bearer s3cret-tokeN"}}).status, 401);
    EXPECT_EQ(post(server->port(), body, {{"Authorization", "Bearer s3cret-token-and-more"}}).status, 401);
    EXPECT_EQ(post(server->port(), body, {{"Authorization", "Basic czNjcmV0LXRva2Vu"}}).status, 401);
    for (int i = 0; i < 3; ++i) {
        r = post(server->port(), body, {{"Authorization", "Bearer s3cret-token"}});
        EXPECT_EQ(r.status, 400) << r.body;  // let in, then judged on the body
        EXPECT_EQ(r.json()["field"], "moduleVersion");
    }
    r = post(server->port(), body, {{"Authorization", "Bearer s3cret-token"}});
    EXPECT_EQ(r.status, 429);
    EXPECT_GE(std::stoi(r.header("retry-after")), 1);
    // GETs are neither limited nor need the token.
    EXPECT_EQ(http(server->port(), "GET", valid_location()).status, 404);
    expect_alive(*server);
}

// Every client together has a rate too: past it the service is unavailable for a while (503),
// whoever asks, and health still answers.
TEST_F(ServiceHttp, AllClientsTogetherHaveARate) {
    auto server = serve("posts_per_minute = 0\nposts_per_minute_total = 2\n");
    const std::string body = test::ModuleAsk{"debian", "x86_64", "6.1.0-28-amd64", "1", "../1"}.body();
    for (int i = 0; i < 2; ++i) EXPECT_EQ(post(server->port(), body).status, 400);
    const Reply r = post(server->port(), body);
    EXPECT_EQ(r.status, 503);
    EXPECT_GE(std::stoi(r.header("retry-after")), 1);
    EXPECT_NE(r.json()["error"].get<std::string>().find("at most 2 a minute from all clients"), std::string::npos)
        << r.body;
    expect_alive(*server);
}

TEST_F(ServiceHttp, AFullQueueGets429AndSigtermGets503ThenTheTargetIsQueuedAgain) {
    const std::string table = "queue = 1\njobs = 1\nshutdown_grace = 3\n";
    auto server = serve(table);
    const int port = server->port();
    const test::ModuleAsk a{"debian", "x86_64", "6.1.0-1-amd64"}, b{"debian", "x86_64", "6.1.0-2-amd64"},
        c{"debian", "amd64", "6.1.0-3-amd64"};
    Reply r = post(port, a.body());
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string location = r.header("location");
    EXPECT_EQ(location, "/v1/module/debian/x86_64/1.0.0/6.1.0-1-amd64/1/" + sha256_text(a.config) + "/hello.ko");
    EXPECT_EQ(r.json()["location"], location);
    for (int i = 0; i < 100 && http(port, "GET", "/v1/metrics").json()["building"] != 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(http(port, "GET", location).status, 202);  // its crawl never ends
    EXPECT_EQ(post(port, b.body()).status, 202);
    r = post(port, c.body());
    EXPECT_EQ(r.status, 429);
    EXPECT_EQ(r.header("retry-after"), "30");
    EXPECT_EQ(post(port, a.body()).status, 202);  // known: the same build
    const Json metrics = http(port, "GET", "/v1/metrics").json();
    EXPECT_EQ(metrics["building"], 1);
    EXPECT_EQ(metrics["queue_length"], 1);

    ::kill(server->pid(), SIGTERM);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    r = post(port, c.body());
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("retry-after"), "30");
    EXPECT_EQ(http(port, "GET", "/v1/health").status, 503);
    EXPECT_EQ(http(port, "GET", location).status, 202);
    EXPECT_EQ(server->stop(SIGTERM, std::chrono::seconds(20)), 128 + SIGTERM);
    EXPECT_NE(server->log().find("builds still running are queued again"), std::string::npos) << server->log();

    server = serve(table);
    const auto state = test::read_file(server->out() / "service.json");
    r = http(server->port(), "GET", location);
    EXPECT_EQ(r.status, 202);
    EXPECT_EQ(r.json()["reason"], "queued again: the service stopped during its build") << r.body;
    EXPECT_EQ(http(server->port(), "GET",
                   "/v1/module/debian/x86_64/1.0.0/6.1.0-2-amd64/1/" + sha256_text(b.config) + "/hello.ko")
                  .status,
              202);
    EXPECT_EQ(http(server->port(), "GET",
                   "/v1/module/debian/x86_64/1.0.0/6.1.0-3-amd64/1/" + sha256_text(c.config) + "/hello.ko")
                  .status,
              404);
}

TEST(ServicePackaging, TheShippedConfigAndUnitAreWhatKbuildReads) {
    test::TempDir dir;
    const fs::path config = test::source_dir() / "packaging/serve/config.toml";
    const ProcessResult bare =
        test::run_kbuild({"--config", config.string(), "serve", "--out", (dir / "out").string()});
    EXPECT_EQ(bare.exit_code, 2);
    EXPECT_NE(bare.err.find("no module sources: add a [serve.modules.NAME] table"), std::string::npos) << bare.err;

    // With a module source added it starts and answers.
    test::ServeProcess server(dir.path(),
                              test::read_file(config) + "\n[serve.modules.hello]\npath = \"" +
                                  (test::source_dir() / "examples/hello").string() + "\"\nversion = \"1.0.0\"\n",
                              dir / "cache");
    EXPECT_EQ(http(server.port(), "GET", "/v1/health").status, 200);
    EXPECT_EQ(server.stop(SIGTERM), 128 + SIGTERM);

    // The unit's command line parses (kbuild's own binary in place of /usr/bin/kbuild).
    std::string exec;
    for (const auto& line : test::list_lines(test::source_dir() / "packaging/serve/kbuild-serve.service"))
        if (line.rfind("ExecStart=", 0) == 0) exec = line.substr(10);
    ASSERT_EQ(exec.rfind("/usr/bin/kbuild ", 0), 0u) << exec;
    std::vector<std::string> args;
    std::istringstream words(exec.substr(16));
    for (std::string word; words >> word;) args.push_back(word == "/etc/kbuild/config.toml" ? config.string() : word);
    args.push_back("--help");
    const ProcessResult help = test::run_kbuild(args);
    EXPECT_EQ(help.exit_code, 0) << help.err;
    EXPECT_NE(help.out.find("--listen"), std::string::npos);
}

// The service's crawls check options as kbuild crawl does: a typo in the config is the reason
// the node is given, naming the file, instead of a crawl of every suite.
TEST_F(ServiceHttp, AnOptionTheDistrosPluginDoesNotDeclareIsTheReasonGiven) {
    std::string toml = config("posts_per_minute = 0\n");
    toml.replace(toml.find("suites=bookworm"), std::string("suites").size(), "serie");
    test::ServeProcess server(dir_.path(), toml, dir_ / "cache");
    Reply r = post(server.port(), test::ModuleAsk{"debian", "x86_64", "6.1.0-28-amd64"}.body());
    ASSERT_EQ(r.status, 202) << r.body;
    const std::string location = r.header("location");
    for (const auto until = Clock::now() + std::chrono::seconds(30); r.status == 202 && Clock::now() < until;) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        r = http(server.port(), "GET", location);
    }
    ASSERT_EQ(r.status, 422) << r.body;
    EXPECT_EQ(r.json()["reason"], "crawl: debian: unknown option 'serie' in " + (dir_ / "config.toml").string() +
                                      " (options: suites, components)")
        << r.body;
}

// Build types are the targets plugins declare (describe, ABI 1.5): a new plugin's are served
// with nothing in the host naming them. The good fixture plugin declares goodos-<edition> for
// gooddistro and nothing for gooddistro-lts, which is then served under its own name.
TEST_F(ServiceHttp, ABuildTypeIsATargetAPluginDeclares) {
    auto server = serve("", {"--plugin-dir", test::fixture_plugin_dir("good").string()});
    const auto ask = [&](const std::string& build_type) {
        test::ModuleAsk a{build_type, "x86_64", "6.1.0-28-amd64"};
        return post(server->port(), a.body());
    };
    EXPECT_EQ(ask("goodos-server").status, 202) << server->log();
    EXPECT_EQ(ask("gooddistro-lts").status, 202) << server->log();
    const Reply undeclared = ask("gooddistro");  // its targets are goodos-<edition>
    EXPECT_EQ(undeclared.status, 400);
    EXPECT_EQ(undeclared.json()["error"], "buildType: unknown 'gooddistro' (known: gooddistro-lts, goodos-<edition>)")
        << undeclared.body;
    EXPECT_EQ(ask("debian").status, 400);  // only the fixture is loaded
    EXPECT_EQ(ask("goodos-").status, 400);
    expect_alive(*server);
}
