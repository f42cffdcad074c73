// The one path every build takes, whatever found the kernels (crawl, local files, the build
// service): per release, fetch -> unpack -> kernel dir -> config hash -> build -> verify ->
// artifact and index record. Releases are independent: one failing never stops the others.
#pragma once

#include "build/builder.h"
#include "fetch/cache.h"
#include "fetch/fetch.h"
#include "fetch/trust.h"
#include "output/artifacts.h"
#include "output/module_sign.h"
#include "plugin/host_services.h"
#include "plugin/plugin_host.h"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kbuild {

struct PipelineOptions {
    std::filesystem::path module_src;
    std::filesystem::path out_dir;
    std::filesystem::path cache_dir;
    std::string module_version;  // empty: the module's own version, else a digest of its source
    // The artifacts (--module, relative to module_src, without .ko); empty: the modules the
    // source declares (module_tree.h), else module_name's, else the .ko files at its top.
    std::vector<std::string> modules;
    // Names the build, its logs and its default artifact; empty: the one module named or
    // declared, else module_src's directory name.
    std::string module_name;
    std::string naming = naming_preset("probe-builder");  // artifact names (artifacts.h)
    bool force = false;                                   // rebuild targets already built from the same inputs
    int jobs = 1;                                         // releases worked on at once
    std::chrono::seconds build_timeout{900};
    // The cache's entries no target uses are evicted, least recently used first, as the run goes
    // (after each target) to keep them within this many bytes; 0: no bound.
    std::uint64_t cache_max = 0;
    // What checked the run's sources: its unverified ones are recorded in index.json.
    Trust* trust = nullptr;
    // Signs each module with the hash the kernel's config names (module_sign.h) before it is
    // committed, and checks the signature as part of verify; null: modules are left unsigned.
    std::shared_ptr<const ModuleSigner> signer;
};

// A release's kernel tree, fetched and unpacked: what a build, or a bundle, starts from.
struct PreparedTree {
    std::string release;            // the release's, else (ABI 1.3) the one its tree names
    std::vector<Package> packages;  // with local paths and sha256
    std::filesystem::path root;     // the unpacked packages (cached by their sha256)
    std::filesystem::path kernel_dir;
    bool self_contained = false;  // the plugin says the tree builds where it lies (a bundle's)
    // A source kernel's (Release::config): its source, the output tree being root and kernel_dir.
    std::filesystem::path source_dir;
    bool modpost_warn = false;  // the prepared tree has no Module.symvers
    ConfigHash config;
    std::string checksum;  // of the packages: the tree's cache key
    // Keep the tree (and a source kernel's source) from eviction while the tree is used.
    std::vector<std::shared_ptr<const Cache::Lease>> leases;
};

// A plugin's releases fetched and unpacked once into the cache (trees/<key of the packages>,
// followed by the trust fingerprint of the release's distro when it has one: packages checked
// as they are unpacked are checked again under other keys). Several threads may use one at once.
class KernelTrees {
public:
    // trust: what the plugin's checks at unpack used (nullptr: none). builder: what prepares
    // source kernels (nullptr: a source kernel is an error).
    KernelTrees(const Plugin& plugin, Fetcher& fetcher, std::filesystem::path cache_dir, Trust* trust = nullptr,
                Builder* builder = nullptr);

    // Fetches and unpacks a release's packages and finds its kernel tree; a source kernel's
    // tree is then prepared with its config (once per source, config, compiler and release:
    // <cache>/prepared/<key>, made under a temporary name and renamed). Throws. sha256s, when
    // given, gets the packages' sha256 as soon as they are fetched (before anything can fail);
    // a source kernel's preparation is written to `log` when one is given.
    PreparedTree prepare(PluginInstance& plugin, const Release& release, std::vector<std::string>* sha256s = nullptr,
                         const std::filesystem::path& log = {});

    // Downloads a release's packages ahead of its build (a failure is left for prepare() to
    // report); the leases keep them until the build has them.
    std::vector<Cache::Lease> prefetch(const Release& release);

    int make_jobs = 1;  // for a source kernel's modules_prepare

    const Cache& cache() const { return cache_; }

private:
    // The packages with local paths and sha256, downloaded where needed; `leases` gets the
    // downloads' (held until they are unpacked).
    std::vector<Package> fetched(std::vector<Package> packages, std::vector<Cache::Lease>& leases);
    // The packages unpacked by the plugin; a partial tree never looks finished. `lease` gets the
    // tree's.
    std::filesystem::path unpacked_root(PluginInstance& plugin, const Release& release,
                                        const std::vector<Package>& packages, Cache::Lease& lease);
    std::string key(const std::vector<Package>& packages) const;
    // A source kernel's tree made ready for module builds (PreparedTree::source_dir).
    Package source_config(const std::filesystem::path& root, const Package& config);
    static std::string unpacked_release(const std::filesystem::path& root, const std::filesystem::path& source,
                                        const std::filesystem::path& config);
    void prepare_source(PreparedTree& tree, const Release& release, std::vector<std::string>* sha256s,
                        const std::filesystem::path& log);

    const Plugin& plugin_;
    Fetcher& fetcher_;
    std::filesystem::path cache_dir_;
    Cache cache_;
    Trust* trust_;
    Builder* builder_;
};

struct PipelineSummary {
    int built = 0, skipped = 0, failed = 0, unavailable = 0;
    std::vector<TargetRecord> records;  // this run's, in the order they finished
    bool all_ok() const { return failed == 0 && unavailable == 0; }
};

class Pipeline {
public:
    Pipeline(const Plugin& plugin, Fetcher& fetcher, Builder& builder, PipelineOptions options);
    ~Pipeline();
    Pipeline(const Pipeline&) = delete;
    Pipeline& operator=(const Pipeline&) = delete;

    // Builds every release; records each in <out>/index.json. Several threads may run at once
    // on one pipeline (the build service does): a run's state lives in the call.
    PipelineSummary run(const std::vector<Release>& releases);

    // What names the build and its logs (PipelineOptions::module_name).
    const std::string& module_name() const { return module_name_; }

    // The host context plugin instances get (fetch and extract through this pipeline's
    // fetcher and the archive service).
    HostContext& host_context() { return context_; }

private:
    TargetRecord new_record(const Release& release) const;
    // Evicts what no target uses down to options_.cache_max (when set); what it evicts is
    // removed by remover_, off the workers' way.
    void keep_cache_bounded();
    // The run's unverified sources that concern this release: repository metadata, and what
    // vouches for its own packages ("<url>: <why>").
    std::vector<std::string> unverified_of(const Release& release) const;
    struct Staged {
        std::string name;              // the artifact's path in the output directory
        std::filesystem::path file;    // its bytes, staged beside it under a temporary name
        std::filesystem::path module;  // the .ko it was made from
        ArtifactRecord artifact;
    };
    // Moves a target's staged artifacts into place and records the target built, as one step
    // among the run's threads. A name another target holds goes to the target that sorts first
    // (target_key), whatever the order of work: the other is recorded failed, naming the first.
    void commit(TargetRecord& record, std::vector<Staged>& staged);
    TargetRecord build_one(PluginInstance& plugin, const Release& release);
    // A release the plugin could not name before its tree was unpacked (a Flatcar image known
    // by URL): fetched and unpacked first, named from the tree, then built as any other.
    TargetRecord build_unnamed(PluginInstance& plugin, const Release& release);

    const Plugin& plugin_;
    Builder& builder_;
    PipelineOptions options_;
    HostContext context_;
    KernelTrees trees_;
    Index index_;
    std::string source_digest_;
    std::string module_name_;
    std::vector<std::string> modules_;  // BuildJob::modules
    bool modules_required_ = false;
    std::vector<std::string> nested_trees_;
    std::mutex commit_mutex_;
    std::atomic<int> compiling_{0};  // builds running their compiler now
    class Remover;
    std::unique_ptr<Remover> remover_;
    int flush_on_interrupt_ = -1;  // add_cleanup's handle
};

// The release (`uname -r`) a kernel build tree was made for: include/config/kernel.release,
// else UTS_RELEASE in include/generated/utsrelease.h. Throws naming what is missing.
std::string read_kernel_release(const std::filesystem::path& kernel_dir);

// SHA-256 over a directory's relative paths and file contents, in sorted order.
std::string digest_tree(const std::filesystem::path& dir);

// The host context a plugin instance needs: the cache dir, fetch through `fetcher`, extract
// (archives) and extract_image (disk images) into directories under the cache only.
// trust: what checks signatures for the verify service; nullptr offers no verify.
HostContext make_host_context(const std::filesystem::path& cache_dir, Fetcher& fetcher, Trust* trust);

}  // namespace kbuild
