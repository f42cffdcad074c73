#include "serve/serve.h"

#include "build/auto_builder.h"
#include "build/builder.h"
#include "build/docker.h"
#include "build/images.h"
#include "fetch/fetch.h"
#include "output/artifacts.h"
#include "output/module_sign.h"
#include "pipeline/pipeline.h"
#include "plugin/plugin_host.h"
#include "serve/service.h"
#include "serve/service_http.h"
#include "targets/crawl_memory.h"
#include "util/interrupt.h"
#include "util/table.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <set>
#include <thread>

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace kbuild {
namespace {

// "host:port", "[v6]:port", ":port" (every address).
std::pair<std::string, std::uint16_t> parse_listen(const std::string& listen) {
    const size_t colon = listen.rfind(':');
    if (colon == std::string::npos) throw UsageError("--listen " + listen + ": expected HOST:PORT");
    std::string host = listen.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    if (host.empty()) host = "0.0.0.0";
    try {
        size_t used = 0;
        const int port = std::stoi(listen.substr(colon + 1), &used);
        if (used != listen.size() - colon - 1 || port < 0 || port > 65535) throw std::invalid_argument("port");
        return {host, static_cast<std::uint16_t>(port)};
    } catch (const std::exception&) {
        throw UsageError("--listen " + listen + ": the port is not a number from 0 to 65535");
    }
}

std::string read_token(const std::string& file) {
    std::ifstream in(file);
    if (!in) throw UsageError(file + ": cannot read the token file");
    std::string token;
    std::getline(in, token);
    token.erase(token.find_last_not_of(" \t\r\n") + 1);
    token.erase(0, token.find_first_not_of(" \t"));
    if (token.empty()) throw UsageError(file + ": the token file is empty");
    return token;
}

// The service's builds: a build type names a plugin and its target, the plugin's crawl finds
// the kernel's packages, and the pipeline of that plugin and module source builds it. One
// pipeline (so one index.json) per <out>/builds/<plugin>/<module source>.
class ServiceBuilds {
public:
    ServiceBuilds(const PluginHost& plugins, Fetcher& fetcher, const ServeSettings& settings,
                  const ServeContext& context)
        : fetcher_(fetcher),
          settings_(settings),
          signer_(context.signer),
          target_of_(context.target_of),
          cache_dir_(context.cache_dir),
          out_dir_(fs::absolute(settings.out)),
          cache_max_(context.cache_max),
          trust_(served_trust(plugins, target_of_), cache_dir_),
          context_(make_host_context(cache_dir_, fetcher, &trust_)),
          served_(declared_targets(plugins, context_)) {}

    // What each plugin with a crawl declares it serves (describe's targets, ABI 1.5; else each
    // of its distros as itself): the build types, with the plugin and the distro to crawl.
    struct Served {
        const Plugin* plugin;
        TargetInfo target;
        bool from_request = false;  // kernels shipped as source, see takes_requested_kernels
    };
    static std::vector<Served> declared_targets(const PluginHost& plugins, const HostContext& context) {
        std::vector<Served> served;
        for (const auto& plugin : plugins.plugins()) {
            if (!plugin->api().crawl) continue;
            std::optional<Description> description;
            try {
                PluginInstance instance(*plugin, context);
                description = instance.describe();
            } catch (const std::exception& e) {
                spdlog::warn("{} (its distros are served under their own names)", e.what());
            }
            const bool from_request = takes_requested_kernels(description);
            for (const auto& target : served_targets(*plugin, description))
                served.push_back({plugin.get(), target, from_request});
        }
        return served;
    }

    // A plugin of kernels shipped as source (vanilla) declares the options `releases` and
    // `config`: it does not list a distro's kernels but makes the release it is asked for from
    // its source and the config given. The service asks it for the node's release with the
    // node's config.
    static bool takes_requested_kernels(const std::optional<Description>& description) {
        if (!description) return false;
        bool releases = false, config = false;
        for (const auto& option : description->options) {
            releases = releases || option.name == "releases";
            config = config || option.name == "config";
        }
        return releases && config;
    }

    // Keeps the config of a request for a source kernel: its build prepares the tree with it.
    void keep_config(const ModuleRequest& r, const std::string& config) const {
        const auto kind = kind_of(r.build_type);
        if (kind && kind->from_request) save_kernel_config(config, cache_dir_);
    }

    // One policy for every distro served: each distro's table of the config file adds its own.
    static TrustPolicy served_trust(const PluginHost& plugins,
                                    const std::function<TargetOptions(const std::string&)>& target_of) {
        TrustPolicy policy;
        for (const auto& plugin : plugins.plugins()) add_plugin_keyrings(policy, *plugin);
        for (const auto& distro : plugins.known_distros()) add_trust(policy, target_of(distro));
        return policy;
    }

    void check_build_type(const std::string& build_type) const {
        if (kind_of(build_type)) return;
        std::vector<std::string> known = settings_.build_types;
        if (known.empty()) {
            for (const auto& s : served_) known.push_back(s.target.name);
            std::sort(known.begin(), known.end());
        }
        throw Error("buildType: unknown '" + build_type + "' (known: " + join(known) + ")");
    }

    BuildOutcome build(const TargetState& state) {
        const ModuleRequest& r = state.request;
        BuildOutcome outcome;
        const auto kind = kind_of(r.build_type);
        const auto source = std::find_if(settings_.modules.begin(), settings_.modules.end(),
                                         [&](const ModuleSource& m) { return m.version == r.module_version; });
        if (!kind || source == settings_.modules.end())
            throw Error("no longer served: build type " + r.build_type + ", module version " + r.module_version);
        const Plugin& plugin = *kind->plugin;
        const Release release = find_release(*kind, r);

        Pipeline& pipeline = pipeline_for(plugin, *source);
        const std::string prefix = "builds/" + plugin.name() + "/" + source->name + "/";
        // Two keys may name one build target (another config, same kernel): one builds, the
        // other finds it built.
        std::shared_ptr<std::mutex> target_lock;
        {
            std::lock_guard lock(mutex_);
            auto& slot = target_locks_[prefix + release.distro + "/" + release.arch + "/" + release.release + "/" +
                                       release.variant];
            if (!slot) slot = std::make_shared<std::mutex>();
            target_lock = slot;
        }
        TargetRecord record;
        {
            std::lock_guard lock(*target_lock);
            const PipelineSummary summary = pipeline.run({release});
            if (summary.records.empty()) {
                outcome.reason = "the pipeline recorded nothing for " + release.release;
                return outcome;
            }
            record = summary.records.front();
        }
        if (!record.log.empty()) outcome.log = prefix + record.log;
        outcome.duration_s = record.duration_s;
        if (!r.config_md5.empty() && !record.config_md5.empty())
            outcome.config_match = r.config_md5 == record.config_md5 ? "yes" : "no";
        if (!has_artifacts(record.status)) {
            outcome.reason = std::string(to_string(record.status)) + ": " + record.reason;
            return outcome;
        }
        // <stem>-<version>-<machine>-<release>-<config md5>.ko (the probe-builder preset the
        // service builds with): the node asks for <stem>.ko.
        const std::string suffix = "-" + record.module_version + "-" + machine_of(record.arch) + "-" +
                                   record.kernelrelease + "-" + record.config_md5 + ".ko";
        std::vector<std::string> names;
        for (const auto& a : record.artifacts) {
            if (a.path.size() <= suffix.size() || a.path.compare(a.path.size() - suffix.size(), suffix.size(), suffix))
                continue;
            const std::string name = a.path.substr(0, a.path.size() - suffix.size()) + ".ko";
            names.push_back(name);
            if (valid_field("name", name)) outcome.artifacts.push_back({name, prefix + a.path, a.sha256, a.vermagic});
        }
        if (std::none_of(outcome.artifacts.begin(), outcome.artifacts.end(),
                         [&](const ServiceArtifact& a) { return a.name == state.module + ".ko"; })) {
            outcome.artifacts.clear();
            outcome.reason = "the build made " + (names.empty() ? std::string("no module") : join(names)) + ", not " +
                             state.module + ".ko (name the module source after its .ko)";
            return outcome;
        }
        outcome.built = true;
        return outcome;
    }

private:
    struct Kind {
        const Plugin* plugin;
        std::string distro, target;
        bool from_request = false;
    };

    // A build type is a target some plugin declares (a name, or a pattern such as
    // "<distro>-<flavour>"; a plain name wins over a pattern), served by that plugin's crawl of
    // the target's distro.
    std::optional<Kind> kind_of(const std::string& build_type) const {
        if (!settings_.build_types.empty() && std::find(settings_.build_types.begin(), settings_.build_types.end(),
                                                        build_type) == settings_.build_types.end())
            return std::nullopt;
        for (const bool exact : {true, false})
            for (const auto& s : served_)
                if (exact ? s.target.name == build_type : target_matches(s.target.name, build_type))
                    return Kind{s.plugin, s.target.distro, build_type, s.from_request};
        return std::nullopt;
    }

    // The release the request names, from the distro's crawl (reused for crawl_ttl; crawled
    // again once when the kernel is not in a crawl older than a minute). Throws Error saying
    // why not: the crawl failed, the release has another kernel version, or no such release.
    Release find_release(const Kind& kind, const ModuleRequest& r) {
        const std::string arch = plugin_arch(r.arch);
        if (kind.from_request) return requested_release(kind, r, arch);
        for (int attempt = 0;; ++attempt) {  // a second attempt only after a stale crawl
            std::shared_ptr<const ReleaseList> list;
            Clock::time_point when;
            try {
                std::tie(list, when) = crawl(kind, arch, attempt > 0);
            } catch (const std::exception& e) {
                throw Error(std::string("crawl: ") + e.what());
            }
            std::vector<std::string> versions;
            const Release* match = nullptr;
            for (const auto& release : list->releases) {
                const std::string target = release.target.empty() ? release.distro : release.target;
                if (release.release != r.kernelrelease || target != kind.target) continue;
                versions.push_back("#" + release.kernelversion);
                if (release.kernelversion != r.kernelversion) continue;
                if (!match || (!match->variant.empty() && release.variant.empty())) match = &release;
            }
            if (match) return *match;
            if (attempt == 0 && Clock::now() - when > std::chrono::minutes(1)) continue;
            if (!versions.empty())
                throw Error(kind.target + " has kernel " + r.kernelrelease + " as " + join(versions) + ", not #" +
                            r.kernelversion);
            throw Error(kind.target + ": no kernel " + r.kernelrelease + " (" + arch + ") in the crawl of " +
                        std::to_string(list->releases.size()) + " releases" +
                        (list->errors.empty() ? std::string() : "; the crawl's errors: " + join(list->errors)));
        }
    }

    // A source kernel's release: the plugin makes exactly the release asked for, from its
    // source on the distro's mirror, with the config the node sent (kept at POST). The
    // kernel version (uname -v's #N) is the node's: nothing in the source decides it.
    Release requested_release(const Kind& kind, const ModuleRequest& r, const std::string& arch) {
        const fs::path config = kernel_config_file(cache_dir_, r.config_sha256);
        if (!fs::exists(config))
            throw Error("the config of this request (sha256 " + r.config_sha256 +
                        ") is no longer kept; ask again with kernelConfigData");
        TargetOptions target = target_of_(kind.distro);
        target.arch = arch;
        auto& options = target.plugin_options;
        options.erase(std::remove_if(options.begin(), options.end(),
                                     [](const std::string& pair) {
                                         return pair.rfind("releases=", 0) == 0 || pair.rfind("config=", 0) == 0;
                                     }),
                      options.end());
        target.kernel_config.clear();
        target.plugin_options.push_back("releases=" + r.kernelrelease);
        target.plugin_options.push_back("config=" + config.string());
        PluginInstance instance(*kind.plugin, context_);
        ReleaseList list;
        try {
            list = instance.crawl(crawl_request(instance, target));
        } catch (const std::exception& e) {
            throw Error(std::string("crawl: ") + e.what());
        }
        for (auto& release : list.releases) {
            if (release.release != r.kernelrelease) continue;
            if (!release.unavailable.empty())
                throw Error(kind.target + " " + r.kernelrelease + ": " + release.unavailable);
            release.kernelversion = r.kernelversion;
            return release;
        }
        throw Error(kind.target + ": the plugin made no release " + r.kernelrelease +
                    (list.errors.empty() ? std::string() : " (" + join(list.errors) + ")"));
    }

    std::pair<std::shared_ptr<const ReleaseList>, Clock::time_point> crawl(const Kind& kind, const std::string& arch,
                                                                           bool fresh) {
        std::lock_guard lock(crawl_mutex_);
        const std::string key = kind.distro + "/" + arch;
        const auto cached = crawls_.find(key);
        if (!fresh && cached != crawls_.end() && Clock::now() - cached->second.second < settings_.crawl_ttl)
            return cached->second;
        TargetOptions target = target_of_(kind.distro);
        target.arch = arch;
        const auto started = Clock::now();
        PluginInstance instance(*kind.plugin, context_);
        const CrawlRequest request = crawl_request(instance, target);
        auto list = std::make_shared<const ReleaseList>(instance.crawl(request));
        for (const auto& e : list->errors) spdlog::warn("{} crawl: {}", kind.distro, e);
        // A crawl that came back short is not believed (see targets/crawl_memory.h): the last
        // one goes on answering until the next attempt, after crawl_ttl; with none, requests
        // fail with the reason.
        if (list->errors.empty()) {
            try {
                check_crawl_shrink(*list, request.distro, request.arch, Json(request), cache_dir_ / "crawls",
                                   target.shrink);
            } catch (const Error& e) {
                if (cached == crawls_.end()) throw;
                spdlog::error("{} crawl: {}; answering from the last crawl ({} releases)", kind.distro, e.what(),
                              cached->second.first->releases.size());
                cached->second.second = Clock::now();
                return cached->second;
            }
        }
        spdlog::info("{} crawl: {} releases ({:.1f} s)", kind.distro, list->releases.size(),
                     std::chrono::duration<double>(Clock::now() - started).count());
        return crawls_[key] = {list, Clock::now()};
    }

    Pipeline& pipeline_for(const Plugin& plugin, const ModuleSource& source) {
        std::lock_guard lock(mutex_);
        const std::string key = plugin.name() + "/" + source.name;
        auto& pipeline = pipelines_[key];
        if (pipeline) return *pipeline;
        auto& builder = builders_[plugin.builder_family()];
        if (!builder) builder = make_builder(settings_.builder, docker_, plugin.builder_family());
        PipelineOptions options;
        options.module_src = fs::absolute(source.path);
        options.out_dir = out_dir_ / "builds" / plugin.name() / source.name;
        options.cache_dir = cache_dir_;
        options.cache_max = cache_max_;
        options.module_version = source.version;
        options.modules = {source.name};  // the node asks for <name>.ko
        options.jobs = 1;
        options.build_timeout = settings_.build_timeout;
        options.trust = &trust_;
        options.signer = signer_;
        pipeline = std::make_unique<Pipeline>(plugin, fetcher_, *builder, options);
        return *pipeline;
    }

    Fetcher& fetcher_;
    const ServeSettings& settings_;
    std::shared_ptr<const ModuleSigner> signer_;
    std::function<TargetOptions(const std::string&)> target_of_;
    fs::path cache_dir_, out_dir_;
    std::uint64_t cache_max_ = 0;
    Trust trust_;
    HostContext context_;
    const std::vector<Served> served_;

    std::mutex crawl_mutex_;
    std::map<std::string, std::pair<std::shared_ptr<const ReleaseList>, Clock::time_point>> crawls_;
    std::mutex mutex_;
    std::unique_ptr<Docker> docker_;
    std::map<std::string, std::unique_ptr<Builder>> builders_;
    std::map<std::string, std::unique_ptr<Pipeline>> pipelines_;
    std::map<std::string, std::shared_ptr<std::mutex>> target_locks_;
};

// Artifacts a killed process left half-copied (the pipeline's <name>.tmp-*): never served,
// since only recorded paths are, but not kept either.
void remove_temporaries(const fs::path& builds) {
    std::error_code ec;
    if (!fs::is_directory(builds, ec)) return;
    for (auto it = fs::recursive_directory_iterator(builds, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        const std::string name = it->path().filename().string();
        if (it->is_regular_file() && name.find(".ko.tmp-") != std::string::npos) {
            spdlog::info("{}: removed (left by an interrupted build)", it->path().string());
            fs::remove(it->path(), ec);
        }
    }
}

}  // namespace

int run_service(const ServeSettings& settings, const ServeContext& context) {
    const auto [host, port] = parse_listen(settings.listen);
    HttpOptions http;
    http.host = host;
    http.port = port;
    http.max_body = settings.max_body;
    http.max_threads = settings.max_threads;
    http.max_connections = settings.max_connections;
    http.request_timeout = settings.request_timeout;
    http.posts_per_minute = settings.posts_per_minute;
    http.posts_per_minute_total = settings.posts_per_minute_total;
    if (!settings.token_file.empty()) http.token = read_token(settings.token_file);

    // Shutting down is registered before anything that registers cleanups of its own (the
    // Docker builder's, each build's process group): those run after it, so builds can
    // finish within the grace.
    ServiceServer* server_ptr = nullptr;
    BuildQueue* queue_ptr = nullptr;
    std::mutex started;
    struct Registered {
        int handle;
        ~Registered() { remove_cleanup(handle); }
    } registered{add_cleanup([&] {
        std::lock_guard lock(started);
        if (!server_ptr || !queue_ptr) return;
        spdlog::warn("shutting down: new requests get 503; waiting up to {} s for running builds",
                     settings.shutdown_grace.count());
        server_ptr->begin_shutdown();
        if (!queue_ptr->drain(settings.shutdown_grace))
            spdlog::warn("builds still running are queued again at the next start");
        server_ptr->stop();
    })};

    auto plugins = std::make_unique<PluginHost>();
    plugins->load_directories(context.plugin_dirs);
    FetchOptions fetch;
    fetch.cache_dir = context.cache_dir;
    Fetcher fetcher(fetch);
    ServiceBuilds builds(*plugins, fetcher, settings, context);

    const fs::path out = fs::absolute(settings.out);
    fs::create_directories(out);
    remove_temporaries(out / "builds");
    QueueOptions queue_options;
    queue_options.out_dir = out;
    queue_options.jobs = settings.jobs;
    queue_options.max_queued = static_cast<std::size_t>(settings.queue);
    queue_options.retry_failed_after = settings.retry_failed_after;
    queue_options.max_failed = settings.max_failed;
    BuildQueue queue(queue_options, [&builds](const TargetState& state) { return builds.build(state); });

    ServiceCatalog catalog;
    catalog.check_build_type = [&builds](const std::string& type) { builds.check_build_type(type); };
    catalog.keep_config = [&builds](const ModuleRequest& r, const std::string& config) {
        builds.keep_config(r, config);
    };
    for (const auto& m : settings.modules) catalog.modules[m.version] = m.name;
    ServiceServer server(queue, catalog, http);
    {
        std::lock_guard lock(started);
        server_ptr = &server;
        queue_ptr = &queue;
    }
    queue.start();
    server.start();
    std::string modules;
    for (const auto& m : settings.modules) modules += (modules.empty() ? "" : ", ") + m.name + " " + m.version;
    spdlog::info("serving on {}:{} (out: {}; modules: {}; {} build(s) at once)", host, server.port(), out.string(),
                 modules, settings.jobs);
    // The address, for scripts (and tests) that asked for port 0.
    std::cout << "http://" << (host.find(':') != std::string::npos ? "[" + host + "]" : host) << ":" << server.port()
              << std::endl;
    // The signal thread ends the process (see core/util/interrupt).
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
}

}  // namespace kbuild
