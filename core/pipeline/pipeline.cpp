#include "pipeline/pipeline.h"

#include "build/verify.h"
#include "kernel/kernel_arch.h"
#include "kernel/kernel_config.h"
#include "kernel/module_tree.h"
#include "output/module_sign.h"
#include "unpack/disk_image.h"
#include "unpack/extract.h"
#include "util/file_lock.h"
#include "util/interrupt.h"
#include "util/parallel.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>
#include <kbuild/files.hpp>

#include <spdlog/spdlog.h>

#include <unistd.h>
#include <zlib.h>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <csignal>
#include <deque>
#include <fstream>
#include <random>
#include <regex>
#include <set>
#include <thread>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

bool inside(const fs::path& path, const fs::path& dir) {
    const std::string p = fs::weakly_canonical(path).string();
    const std::string d = fs::weakly_canonical(dir).string();
    return p.size() > d.size() && p.compare(0, d.size(), d) == 0 && p[d.size()] == '/';
}

// A file name fit for logs: no path separators.
std::string safe_component(std::string text) {
    for (char& c : text)
        if (c == '/' || c == '\0') c = '_';
    return text;
}

bool artifacts_intact(const TargetRecord& record, const fs::path& out_dir) {
    if (record.artifacts.empty()) return false;
    for (const auto& artifact : record.artifacts) {
        const fs::path file = out_dir / artifact.path;
        std::error_code ec;
        if (!fs::is_regular_file(file, ec) || sha256_file(file.string()) != artifact.sha256) return false;
    }
    return true;
}

// The module gzip-compressed (the collector's .ko.gz), level 9.
void gzip_file(const fs::path& from, const fs::path& to) {
    const std::string bytes = read_file(from.string());
    gzFile out = gzopen(to.c_str(), "wb9");
    if (out == nullptr) throw Error(to.string() + ": cannot write");
    const int written = gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size()));
    if (gzclose(out) != Z_OK || written != static_cast<int>(bytes.size())) throw Error(to.string() + ": gzip failed");
}

}  // namespace

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string shown(const TargetRecord& r) {
    return r.distro + " " + r.kernelrelease + (r.variant.empty() ? "" : "~" + r.variant);
}

std::string taken(const std::string& name, const TargetRecord& keeper) {
    return name + ": also the artifact of " + shown(keeper) +
           ", which keeps it (of targets named alike, the one that sorts first does); the naming cannot tell "
           "them apart (add {kernelrelease}, {variant} or {config_md5})";
}

// Artifacts left half-written by a kbuild that was killed (<name>.tmp-<pid>-<n>, the pid gone).
void remove_abandoned_files(const fs::path& out_dir) {
    static const std::regex staged(R"(.*\.tmp-([0-9]+)-[0-9]+)");
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(out_dir, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        std::smatch m;
        const std::string name = it->path().filename().string();
        if (!it->is_regular_file() || !std::regex_match(name, m, staged)) continue;
        if (::kill(std::stoi(m[1]), 0) == 0 || errno != ESRCH) continue;
        std::error_code ignored;
        fs::remove(it->path(), ignored);
    }
}

// The packages of the releases next in line are downloaded while the ones before them build,
// at most `ahead` releases past the last one a worker started: the network and the compilers
// work at once, and the cache holds only the downloads of the few releases about to build.
class Prefetch {
public:
    Prefetch(KernelTrees& trees, const std::vector<Release>& releases, std::size_t ahead)
        : trees_(trees), releases_(releases), ahead_(ahead), held_(releases.size()), done_(releases.size()) {
        if (releases.size() > 1) thread_ = std::thread([this] { run(); });
    }
    ~Prefetch() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        moved_.notify_all();
        if (thread_.joinable()) thread_.join();
    }
    Prefetch(const Prefetch&) = delete;
    Prefetch& operator=(const Prefetch&) = delete;

    // A worker took release i: the window moves on.
    void started(std::size_t i) {
        {
            std::lock_guard lock(mutex_);
            started_ = std::max(started_, i + 1);
        }
        moved_.notify_all();
    }
    // Release i's build has its packages (its own leases): the prefetch's are let go.
    void done(std::size_t i) {
        std::lock_guard lock(mutex_);
        held_[i].clear();
        done_[i] = true;
    }

private:
    void run() {
        for (std::size_t i = 0; i < releases_.size(); ++i) {
            {
                std::unique_lock lock(mutex_);
                moved_.wait(lock, [&] { return stopping_ || i < started_ + ahead_; });
                if (stopping_) return;
                if (i < started_) continue;  // a worker has it already
            }
            if (!releases_[i].unavailable.empty() || interrupted()) continue;
            std::vector<Cache::Lease> leases;
            try {
                leases = trees_.prefetch(releases_[i]);
            } catch (const std::exception& e) {
                spdlog::debug("prefetch of {}: {}", release_id(releases_[i]), e.what());
            }
            std::lock_guard lock(mutex_);
            if (!done_[i]) held_[i] = std::move(leases);
        }
    }

    KernelTrees& trees_;
    const std::vector<Release>& releases_;
    const std::size_t ahead_;
    std::mutex mutex_;
    std::condition_variable moved_;
    std::size_t started_ = 0;
    bool stopping_ = false;
    std::vector<std::vector<Cache::Lease>> held_;
    std::vector<bool> done_;
    std::thread thread_;
};

// How many builds compile at once, while one does.
class Compiling {
public:
    explicit Compiling(std::atomic<int>& count) : count_(count), now_(++count) {}
    ~Compiling() { --count_; }
    Compiling(const Compiling&) = delete;
    Compiling& operator=(const Compiling&) = delete;
    int now() const { return now_; }

private:
    std::atomic<int>& count_;
    int now_;
};

}  // namespace

// Under one lock, so that what index.json records always hashes to the file on disk: a record
// whose artifact is about to be replaced is changed first, the files are renamed into place,
// then the target's record is written.
void Pipeline::commit(TargetRecord& record, std::vector<Staged>& staged) {
    std::lock_guard lock(commit_mutex_);
    std::vector<TargetRecord> losers;
    for (const auto& s : staged) {
        for (const auto& other : index_.holders(s.name)) {
            if (target_key(other) == target_key(record)) continue;
            if (target_key(other) < target_key(record)) throw Error(taken(s.name, other));
            TargetRecord loser = other;
            loser.status = TargetStatus::failed;
            loser.reason = taken(s.name, record);
            loser.artifacts.clear();
            losers.push_back(loser);
        }
    }
    for (const auto& loser : losers) index_.put(loser);
    if (auto previous = index_.find(record)) {
        const bool replaced = std::any_of(previous->artifacts.begin(), previous->artifacts.end(), [&](const auto& a) {
            return std::any_of(staged.begin(), staged.end(),
                               [&](const Staged& s) { return s.name == a.path && s.artifact.sha256 != a.sha256; });
        });
        if (replaced) {
            previous->status = TargetStatus::failed;
            previous->reason = "interrupted while its artifacts were replaced";
            previous->artifacts.clear();
            index_.put(*previous);
        }
    }
    for (auto& s : staged) {
        fs::rename(s.file, options_.out_dir / s.name);
        record.artifacts.push_back(s.artifact);
    }
    staged.clear();
    record.status = TargetStatus::built;
    index_.put(record);
}

TargetRecord Pipeline::new_record(const Release& release) const {
    TargetRecord record{release.distro, release.arch, release.release, release.kernelversion, module_name_};
    record.target = release.target.empty() ? release.distro : release.target;
    record.variant = release.variant;
    for (const auto& p : release.packages) record.packages.push_back(p.where());
    record.unverified = unverified_of(release);
    return record;
}

std::vector<std::string> Pipeline::unverified_of(const Release& release) const {
    std::vector<std::string> unverified;
    if (!options_.trust) return unverified;
    std::set<std::string> packages;
    for (const auto& p : release.packages) packages.insert(p.where());
    for (const auto& source : options_.trust->unverified())
        if (source.package.empty() || packages.count(source.package))
            unverified.push_back(source.url + ": " + source.reason);
    return unverified;
}

std::string digest_tree(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const auto& entry : fs::recursive_directory_iterator(dir))
        if (entry.is_regular_file() || entry.is_symlink()) files.push_back(entry.path());
    std::sort(files.begin(), files.end());
    std::string manifest;
    for (const auto& file : files) {
        manifest += fs::relative(file, dir).string() + '\0';
        manifest += fs::is_symlink(file) ? "->" + fs::read_symlink(file).string() : sha256_file(file.string());
        manifest += '\n';
    }
    return sha256_text(manifest);
}

std::string read_kernel_release(const fs::path& kernel_dir) {
    std::string line;
    if (std::ifstream file(kernel_dir / "include/config/kernel.release"); std::getline(file, line) && !line.empty())
        return line;
    std::ifstream uts(kernel_dir / "include/generated/utsrelease.h");
    const std::string prefix = "#define UTS_RELEASE \"";
    while (std::getline(uts, line))
        if (line.rfind(prefix, 0) == 0 && line.size() > prefix.size() + 1 && line.back() == '"')
            return line.substr(prefix.size(), line.size() - prefix.size() - 1);
    throw Error(kernel_dir.string() + ": no include/config/kernel.release or UTS_RELEASE to name the kernel");
}

HostContext make_host_context(const fs::path& cache_dir, Fetcher& fetcher, Trust* trust) {
    HostContext context;
    context.cache_dir = cache_dir;
    context.fetch = [&fetcher](const std::string& request) {
        const Package package = from_document<Package>(request.c_str(), "fetch");
        const FetchedFile file = fetcher.fetch({package.url, package.sha256, package.size, package.sha512});
        return to_document(file);
    };
    if (trust != nullptr)
        context.verify = [cache_dir, trust](const std::string& request, const std::string& distro,
                                            const std::vector<std::string>& handed) {
            const VerifyRequest r = from_document<VerifyRequest>(request.c_str(), "verify");
            for (const auto& file : {r.file, r.signature})
                if (!file.empty() && !inside(file, cache_dir) &&
                    std::find(handed.begin(), handed.end(), file) == handed.end())
                    throw Error("verify: " + file + " is neither a download in kbuild's cache " + cache_dir.string() +
                                " nor a package handed to the plugin");
            return to_document(trust->verify(r, distro));
        };
    context.extract = [cache_dir](const std::string& request) {
        const ExtractRequest r = from_document<ExtractRequest>(request.c_str(), "extract");
        if (!inside(r.dest, cache_dir))
            throw Error("extract: " + r.dest + " is outside kbuild's cache " + cache_dir.string());
        const DebMember member = r.member == "control" ? DebMember::control : DebMember::data;
        const ExtractStats stats = extract_archive(r.archive, r.dest, member);
        return to_document(ExtractResult{r.dest, stats.entries});
    };
    context.extract_image = [cache_dir](const std::string& request) {
        const auto r = from_document<ImageExtractRequest>(request.c_str(), "extract_image");
        if (!inside(r.dest, cache_dir))
            throw Error("extract_image: " + r.dest + " is outside kbuild's cache " + cache_dir.string());
        const ImageExtractStats stats = extract_from_image(r.image, r.dest, r.paths);
        return to_document(ImageExtractResult{r.dest, stats.entries, stats.matched, stats.where});
    };
    return context;
}

// Removes, on a thread of its own, what eviction renamed away: deleting a tree of 15,000 files
// takes seconds of disk, which a worker would otherwise wait out before its next target.
class Pipeline::Remover {
public:
    ~Remover() {
        {
            std::lock_guard lock(mutex_);
            stopping_ = true;
        }
        wake_.notify_all();
        if (thread_.joinable()) thread_.join();  // after the queue is empty
    }
    void add(std::vector<fs::path> paths) {
        if (paths.empty()) return;
        std::lock_guard lock(mutex_);
        queue_.insert(queue_.end(), paths.begin(), paths.end());
        if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
        wake_.notify_one();
    }

private:
    void run() {
        for (;;) {
            std::unique_lock lock(mutex_);
            wake_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
            if (queue_.empty()) return;
            const fs::path path = queue_.front();
            queue_.pop_front();
            lock.unlock();
            std::error_code ec;
            fs::remove_all(path, ec);
            if (ec) spdlog::warn("cache: removing {}: {}", path.string(), ec.message());
        }
    }

    std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<fs::path> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

Pipeline::Pipeline(const Plugin& plugin, Fetcher& fetcher, Builder& builder, PipelineOptions options)
    : plugin_(plugin),
      builder_(builder),
      options_(std::move(options)),
      context_(make_host_context(options_.cache_dir, fetcher, options_.trust)),
      trees_(plugin, fetcher, options_.cache_dir, options_.trust, &builder),
      index_(options_.out_dir) {
    if (!fs::is_directory(options_.module_src))
        throw Error(options_.module_src.string() + ": module source is not a directory");
    source_digest_ = digest_tree(options_.module_src);
    for (auto name : options_.modules) {
        if (name.size() > 3 && name.compare(name.size() - 3, 3, ".ko") == 0) name.erase(name.size() - 3);
        modules_.push_back(name);
    }
    modules_required_ = !modules_.empty();
    if (modules_.empty()) {
        const DeclaredModules declared = declared_modules(options_.module_src);
        if (declared.complete) modules_ = declared.names;
    }
    if (modules_.empty() && !options_.module_name.empty()) {
        modules_ = {options_.module_name};
        modules_required_ = true;
    }
    nested_trees_ = nested_module_trees(options_.module_src);
    module_name_ = !options_.module_name.empty() ? options_.module_name
                   : modules_.size() == 1        ? fs::path(modules_.front()).filename().string()
                                                 : fs::weakly_canonical(options_.module_src).filename().string();
    trees_.make_jobs = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    remover_ = std::make_unique<Remover>();
    remove_abandoned_files(options_.out_dir);
    // Ctrl-C ends kbuild without unwinding (no ~Index): index.json takes in the journal first.
    flush_on_interrupt_ = add_cleanup([this] { index_.flush(); });
    if (const int removed = trees_.cache().remove_leftovers(); removed > 0)
        spdlog::info("cache {}: removed {} leftovers of killed runs", options_.cache_dir.string(), removed);
}

Pipeline::~Pipeline() {
    remove_cleanup(flush_on_interrupt_);
}

void Pipeline::keep_cache_bounded() {
    if (options_.cache_max == 0) return;
    Cache::Pruned pruned = trees_.cache().prune(options_.cache_max, /*remove_now=*/false);
    remover_->add(std::move(pruned.doomed));
    for (const auto& entry : pruned.evicted)
        spdlog::debug("cache: evicted {} ({})", entry.path.string(), size_text(entry.bytes));
    if (!pruned.evicted.empty())
        spdlog::info("cache: evicted {} entries ({}), {} kept of {} at most{}", pruned.evicted.size(),
                     size_text(pruned.freed), size_text(pruned.kept), size_text(options_.cache_max),
                     pruned.in_use > 0 ? " (" + std::to_string(pruned.in_use) + " in use)" : "");
}

PipelineSummary Pipeline::run(const std::vector<Release>& releases) {
    PipelineSummary summary;
    std::mutex summary_mutex;
    const size_t total = releases.size();
    const int workers = std::max(1, std::min<int>(options_.jobs, static_cast<int>(total)));
    // Trees unpacked side by side share the cores: an xz thread beyond its share only holds memory.
    set_unpack_threads(std::max(1u, std::thread::hardware_concurrency() / static_cast<unsigned>(workers)));
    try {
        keep_cache_bounded();
    } catch (const std::exception& e) {
        spdlog::warn("{}", e.what());
    }
    Prefetch prefetch(trees_, releases, static_cast<size_t>(workers));
    parallel_for(total, static_cast<size_t>(workers), [&] {
        // One plugin instance per thread; when it cannot be made, each target says why.
        return [&, instance = std::unique_ptr<PluginInstance>()](size_t i) mutable {
            const Release& release = releases[i];
            prefetch.started(i);
            TargetRecord record;
            try {
                if (!instance) instance = std::make_unique<PluginInstance>(plugin_, context_);
            } catch (const std::exception& e) {
                record = new_record(release);
                record.status = TargetStatus::failed;
                record.reason = e.what();
                index_.put(record);
            }
            if (instance) record = build_one(*instance, release);
            prefetch.done(i);
            try {
                keep_cache_bounded();
            } catch (const std::exception& e) {
                spdlog::warn("{}", e.what());
            }
            std::lock_guard lock(summary_mutex);
            summary.records.push_back(record);
            const std::string where = "[" + std::to_string(i + 1) + "/" + std::to_string(total) + "] " +
                                      release.distro + " " + release_id(release);
            if (has_artifacts(record.status)) {
                spdlog::info("{}: {} {} ({:.1f} s)", where, to_string(record.status),
                             record.artifacts.empty() ? "" : record.artifacts.front().path, record.duration_s);
            } else {
                spdlog::error("{}: {}: {}", where, to_string(record.status), record.reason);
            }
        };
    });
    // A target built early in the run may have lost its name to one that sorts first since.
    for (auto& record : summary.records) {
        if (const auto now = index_.find(record);
            now && now->status == TargetStatus::failed && record.status != TargetStatus::failed) {
            record = *now;
            spdlog::error("{} {}: failed: {}", record.distro, record.kernelrelease, record.reason);
        }
        if (record.status == TargetStatus::built)
            ++summary.built;
        else if (record.status == TargetStatus::skipped)
            ++summary.skipped;
        else if (record.status == TargetStatus::unavailable)
            ++summary.unavailable;
        else
            ++summary.failed;
    }
    index_.flush();
    return summary;
}

// Keyed by what is unpacked, not by the release's name: a release named only once unpacked
// (build_unnamed) finds the same tree again.
std::string KernelTrees::key(const std::vector<Package>& packages) const {
    std::vector<std::string> digests;
    for (const auto& package : packages) digests.push_back(package.sha256);
    std::sort(digests.begin(), digests.end());
    std::string joined = plugin_.name() + "\n";
    for (const auto& d : digests) joined += d + "\n";
    return sha256_text(joined);
}

KernelTrees::KernelTrees(const Plugin& plugin, Fetcher& fetcher, fs::path cache_dir, Trust* trust, Builder* builder)
    : plugin_(plugin),
      fetcher_(fetcher),
      cache_dir_(std::move(cache_dir)),
      cache_(cache_dir_),
      trust_(trust),
      builder_(builder) {}

namespace {

// What was used unverified to make a tree (its packages unpacked with no key configured),
// kept beside it so a later run that reuses the tree records it too.
void save_unverified(const fs::path& file, const std::vector<UnverifiedSource>& sources) {
    Json list = Json::array();
    for (const auto& s : sources) list.push_back({{"url", s.url}, {"reason", s.reason}, {"package", s.package}});
    const fs::path tmp = file.string() + ".tmp-" + owned_suffix();
    std::ofstream(tmp) << list.dump();
    fs::rename(tmp, file);
}

std::vector<UnverifiedSource> load_unverified(const fs::path& file) {
    std::vector<UnverifiedSource> sources;
    std::ifstream in(file);
    if (!in) return sources;
    const Json list = Json::parse(in, nullptr, false);
    if (!list.is_array()) return sources;
    for (const auto& s : list)
        if (s.is_object()) sources.push_back({s.value("url", ""), s.value("reason", ""), s.value("package", "")});
    return sources;
}

}  // namespace

fs::path KernelTrees::unpacked_root(PluginInstance& plugin, const Release& release,
                                    const std::vector<Package>& packages, Cache::Lease& lease) {
    const fs::path trees = cache_dir_ / "trees";
    const std::string fingerprint = trust_ ? trust_->fingerprint(release.distro) : "";
    const std::string name = key(packages).substr(0, 32) + (fingerprint.empty() ? "" : "-" + fingerprint.substr(0, 16));
    const fs::path final_dir = trees / name;
    const fs::path notes = trees / (name + ".unverified.json");
    lease = cache_.lease(final_dir);  // before looking: a tree found is one not being evicted
    if (fs::is_directory(final_dir)) {
        if (trust_) trust_->note_unverified(load_unverified(notes));
        return final_dir;
    }

    // Unpacked under a temporary name, renamed when complete: a partial tree never looks done.
    const fs::path temporary = trees / (final_dir.filename().string() + ".part-" + owned_suffix());
    fs::create_directories(temporary);
    Release unpack_release = release;
    unpack_release.packages = packages;
    try {
        const UnpackResult result = plugin.unpack({unpack_release, temporary.string()});
        if (fs::weakly_canonical(result.root) != fs::weakly_canonical(temporary))
            throw Error(plugin_.name() + ": unpack: root " + result.root + " is not the directory it was given");
    } catch (...) {
        std::error_code ec;
        fs::remove_all(temporary, ec);
        throw;
    }
    if (trust_) {
        std::set<std::string> wheres;
        for (const auto& p : packages) wheres.insert(p.where());
        std::vector<UnverifiedSource> mine;
        for (const auto& source : trust_->unverified())
            if (!source.package.empty() && wheres.count(source.package)) mine.push_back(source);
        if (!mine.empty()) save_unverified(notes, mine);
    }
    const std::uint64_t bytes = disk_use(temporary);
    std::error_code ec;
    fs::rename(temporary, final_dir, ec);
    if (ec) {  // another worker finished the same tree first
        fs::remove_all(temporary, ec);
        if (!fs::is_directory(final_dir)) throw Error(final_dir.string() + ": cannot create");
    } else {
        lease.set_size(bytes);
    }
    return final_dir;
}

std::vector<Package> KernelTrees::fetched(std::vector<Package> packages, std::vector<Cache::Lease>& leases) {
    std::vector<FetchRequest> requests;
    std::vector<size_t> remote;
    for (size_t i = 0; i < packages.size(); ++i) {
        if (!packages[i].path.empty()) continue;
        requests.push_back({packages[i].url, packages[i].sha256, packages[i].size, packages[i].sha512, true});
        remote.push_back(i);
        leases.push_back(cache_.lease(fetcher_.cache_path(requests.back()).parent_path()));
    }
    const auto outcomes = fetcher_.fetch_all(requests);
    for (size_t k = 0; k < outcomes.size(); ++k) {
        const FetchedFile& file = outcomes[k].file();
        packages[remote[k]].path = file.path;
        packages[remote[k]].sha256 = file.sha256;
    }
    for (auto& package : packages)
        if (package.sha256.empty()) package.sha256 = sha256_file(package.path);
    return packages;
}

std::vector<Cache::Lease> KernelTrees::prefetch(const Release& release) {
    std::vector<Cache::Lease> leases;
    fetched(release.packages, leases);
    return leases;
}

PreparedTree KernelTrees::prepare(PluginInstance& plugin, const Release& release, std::vector<std::string>* sha256s,
                                  const fs::path& log) {
    PreparedTree tree;
    std::vector<Cache::Lease> downloads;  // kept until unpacked
    tree.packages = fetched(release.packages, downloads);
    if (sha256s) {
        sha256s->clear();
        for (const auto& p : tree.packages) sha256s->push_back(p.sha256);
    }
    tree.checksum = key(tree.packages);
    Cache::Lease unpacked;
    tree.root = unpacked_root(plugin, release, tree.packages, unpacked);
    tree.leases.push_back(std::make_shared<const Cache::Lease>(std::move(unpacked)));
    downloads.clear();
    const KernelDir kernel_dir = plugin.get_kernel_dir({release.release, tree.root.string()});
    tree.kernel_dir = kernel_dir.kernel_dir;
    tree.self_contained = kernel_dir.self_contained;
    if (release.is_source()) {
        prepare_source(tree, release, sha256s, log);
        return tree;
    }
    tree.release = release.release.empty() ? read_kernel_release(tree.kernel_dir) : release.release;
    tree.config = plugin.hash_config({tree.release, tree.root.string(), tree.kernel_dir.string()});
    return tree;
}

// A source kernel's config: fetched, or (a relative path and no URL) a file the plugin's unpack
// put in the unpacked root (COS's, taken out of its kernel-headers.tgz), never outside it.
Package KernelTrees::source_config(const fs::path& root, const Package& config) {
    if (!config.url.empty() || fs::path(config.path).is_absolute()) {
        std::vector<Cache::Lease> leases;  // read at once, when the tree is prepared
        return fetched({config}, leases).front();
    }
    const fs::path file = fs::weakly_canonical(root / config.path);
    const fs::path base = fs::weakly_canonical(root);
    const auto [end, rest] = std::mismatch(base.begin(), base.end(), file.begin(), file.end());
    if (end != base.end() || rest == file.end())
        throw Error("config " + config.path + ": not a file inside the unpacked source");
    if (!fs::is_regular_file(file)) throw Error("config " + config.path + ": the unpacked source has no such file");
    Package found = config;
    found.path = file.string();
    found.sha256 = sha256_file(found.path);
    return found;
}

// An unnamed source kernel's release: what the plugin's unpack read from the distro's own files
// (<root>/kernel.release: COS's headers name it), else what the source and config make.
std::string KernelTrees::unpacked_release(const fs::path& root, const fs::path& source, const fs::path& config) {
    if (fs::is_regular_file(root / "kernel.release")) {
        const std::string named = trim(read_file((root / "kernel.release").string()));
        if (!named.empty()) return named;
    }
    return source_version(source) + config_value(config, "CONFIG_LOCALVERSION");
}

void KernelTrees::prepare_source(PreparedTree& tree, const Release& release, std::vector<std::string>* sha256s,
                                 const fs::path& log) {
    const Package config = source_config(tree.root, release.config);
    if (sha256s) sha256s->push_back(config.sha256);
    const fs::path source = tree.kernel_dir;
    const std::string wanted =
        release.release.empty() ? unpacked_release(tree.root, source, config.path) : release.release;
    if (!builder_) throw Error(wanted + ": a source kernel is prepared by a builder, and none is given here");
    const KernelCompiler compiler = config_compiler(config.path);
    const LocalVersion local =
        local_version_for(wanted, source_version(source), config_value(config.path, "CONFIG_LOCALVERSION"));
    BuildJob probe;
    probe.compiler = compiler;
    probe.cross = cross_arch(kernel_arch(config.path));
    const std::string builder = builder_->name(probe);
    // One tree per source, config, compiler (the image that has it) and release.
    const std::string key =
        sha256_text(tree.checksum + "\n" + config.sha256 + "\n" + compiler.text + "\n" + builder + "\n" + wanted);
    const fs::path dir = cache_dir_ / "prepared" / key.substr(0, 32);
    // One preparation of a tree at a time (workers, the service's module sources, other kbuild
    // processes): the others wait for it and reuse it.
    fs::create_directories(dir.parent_path());
    const FileLock lock(dir.string() + ".lock", release.distro + " " + wanted);
    auto lease = std::make_shared<Cache::Lease>(cache_.lease(dir));
    if (fs::is_directory(dir)) {
        spdlog::info("{} {}: the source tree prepared with this config is reused ({})", release.distro, wanted,
                     dir.string());
    } else {
        spdlog::info("{} {}: preparing the source tree with {} in {} (make olddefconfig modules_prepare)",
                     release.distro, wanted, compiler.name(), builder);
        // Made under a temporary name and renamed when complete: a tree being prepared is never
        // taken for a prepared one.
        const fs::path temporary = dir.string() + ".part-" + owned_suffix();
        fs::create_directories(temporary);
        try {
            std::string text = read_file(config.path);
            if (local.clear_config_localversion)
                text = std::regex_replace(text, std::regex("^CONFIG_LOCALVERSION=.*$", std::regex::multiline),
                                          "CONFIG_LOCALVERSION=\"\"");
            std::ofstream(temporary / ".config", std::ios::binary) << text;
            PrepareJob job;
            job.release = wanted;
            job.source_dir = source;
            job.out_dir = temporary;
            job.compiler = compiler;
            job.cross = probe.cross;
            job.localversion = local.localversion;
            job.log = log.empty() ? fs::path(temporary.string() + ".log") : log;
            job.make_jobs = make_jobs;
            builder_->prepare(job);
            const std::string made = trim(read_file((temporary / "include/config/kernel.release").string()));
            if (made != wanted) {
                // olddefconfig keeps the config it was given as .config.old.
                const fs::path given =
                    fs::exists(temporary / ".config.old") ? temporary / ".config.old" : fs::path(config.path);
                const std::string was = config_value(given, "CONFIG_LOCALVERSION");
                const std::string now = config_value(temporary / ".config", "CONFIG_LOCALVERSION");
                throw Error(
                    "the tree prepared from " + config.where() + " is kernel " + made + ", not " + wanted +
                    " (make olddefconfig changed what makes its release" +
                    (was == now ? std::string() : ": CONFIG_LOCALVERSION \"" + was + "\" became \"" + now + "\"") +
                    ")");
            }
        } catch (...) {
            std::error_code ec;
            fs::remove_all(temporary, ec);
            throw;
        }
        const std::uint64_t bytes = disk_use(temporary);
        std::error_code ec;
        fs::rename(temporary, dir, ec);
        if (ec) {  // another worker prepared the same tree first
            fs::remove_all(temporary, ec);
            if (!fs::is_directory(dir)) throw Error(dir.string() + ": cannot create");
        } else {
            lease->set_size(bytes);
        }
    }
    tree.leases.push_back(std::move(lease));  // beside the source's own
    tree.source_dir = source;
    tree.root = dir;
    tree.kernel_dir = dir;
    tree.self_contained = true;
    tree.modpost_warn = !fs::exists(dir / "Module.symvers");
    tree.release = wanted;
    tree.config = {config.path, md5_file(config.path)};
}

TargetRecord Pipeline::build_unnamed(PluginInstance& plugin, const Release& release) {
    Release named = release;
    std::vector<std::string> sha256s;
    try {
        const PreparedTree tree = trees_.prepare(plugin, release, &sha256s);
        named.packages = tree.packages;
        named.release = tree.release;
    } catch (const std::exception& e) {
        stop_here_if_interrupted();
        TargetRecord record = new_record(release);
        record.package_sha256 = sha256s;
        record.status = TargetStatus::failed;
        record.reason = e.what();
        record.finished_at = utc_now();
        index_.put(record);
        return record;
    }
    spdlog::info("{} {}: the tree names the kernel {}", release.distro, release_id(release), named.release);
    return build_one(plugin, named);
}

TargetRecord Pipeline::build_one(PluginInstance& plugin, const Release& release) {
    if (release.release.empty() && release.unavailable.empty()) return build_unnamed(plugin, release);
    TargetRecord record = new_record(release);
    if (!release.unavailable.empty()) {
        record.status = TargetStatus::unavailable;
        record.reason = release.unavailable;
        record.finished_at = utc_now();
        index_.put(record);
        return record;
    }

    Json inputs = {{"release", release},
                   {"source", source_digest_},
                   {"module_version", options_.module_version},
                   {"plugin", plugin_.name()}};
    inputs["naming"] = options_.naming;
    inputs["modules"] = modules_;
    // Another key makes other artifacts; unsigned builds name nothing new (their inputs stay).
    if (options_.signer) inputs["signer"] = options_.signer->cert_sha256();
    record.inputs = sha256_text(inputs.dump());
    record.naming = options_.naming;
    const auto previous = index_.find(record);
    if (!options_.force && previous && previous->inputs == record.inputs && has_artifacts(previous->status) &&
        artifacts_intact(*previous, options_.out_dir)) {
        record = *previous;
        record.status = TargetStatus::skipped;
        record.reason = "already built from the same inputs (--force rebuilds)";
        index_.put(record);
        return record;
    }

    const auto started = std::chrono::steady_clock::now();
    const fs::path work = options_.cache_dir / "work" / owned_suffix();
    const fs::path log_dir = options_.out_dir / "logs";
    const std::string log_name =
        safe_component(release.distro + "_" + release.arch + "_" + release_id(release) + "_" + module_name_ + ".log");
    record.log = "logs/" + log_name;
    std::vector<Staged> staged;
    bool committed = false;
    try {
        fs::create_directories(log_dir);
        std::ofstream{log_dir / log_name, std::ios::trunc}.close();  // each build's log starts empty

        const PreparedTree tree = trees_.prepare(plugin, release, &record.package_sha256, log_dir / log_name);
        const ConfigHash& config = tree.config;
        if (!tree.source_dir.empty())
            record.source_tree = "prepared from source with " + config.config +
                                 (tree.modpost_warn ? "; no Module.symvers: built with KBUILD_MODPOST_WARN=1, the "
                                                      "module's symbols carry no versions"
                                                    : "");
        record.config_md5 = config.md5;
        record.unverified = unverified_of(release);  // with what unpacking its packages found
        // The hash is known, and checked, before the build starts.
        std::string sig_hash;
        if (options_.signer) {
            sig_hash = module_sig_hash(config.config);
            if (sig_hash.empty()) {
                sig_hash = kDefaultModuleSigHash;
                spdlog::info("{} {}: the kernel's config names no CONFIG_MODULE_SIG_HASH: signing with {}",
                             release.distro, release.release, sig_hash);
            } else {
                try {
                    check_module_sig_hash(sig_hash);
                } catch (const Error& e) {
                    throw Error(config.config + ": CONFIG_MODULE_SIG_HASH " + e.what());
                }
            }
        }

        BuildJob job;
        job.release = release.release;
        job.root = tree.root;
        job.kernel_dir = tree.kernel_dir;
        job.self_contained = tree.self_contained;
        job.source_dir = tree.source_dir;
        job.modpost_warn = tree.modpost_warn;
        job.compiler = read_kernel_compiler(tree.kernel_dir);
        const std::string arch = kernel_arch(config.config);
        job.cross = cross_arch(arch);
        job.foreign_program = foreign_host_program(tree.root, tree.kernel_dir);
        job.module_src = options_.module_src;
        job.modules = modules_;
        job.modules_required = modules_required_;
        job.nested_trees = nested_trees_;
        job.work_dir = work;
        job.log = log_dir / log_name;
        job.timeout = options_.build_timeout;
        // The cores are shared by the builds compiling now: while the other workers download or
        // unpack, this one takes what they leave.
        const Compiling compiling(compiling_);
        job.make_jobs = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / compiling.now());
        record.compiler = job.compiler.text;
        record.builder = builder_.name(job);
        record.builder_reason = builder_.choice(job);
        if (!record.builder_reason.empty())
            spdlog::info("{} {}: {}", release.distro, release.release, record.builder_reason);
        fs::create_directories(work);
        std::vector<fs::path> built;
        try {
            built = builder_.build(job);
        } catch (const Error& e) {
            throw Error(std::string(e.what()) + " (log: " + (options_.out_dir / record.log).string() + ")");
        }

        const std::string config_sha256 = sha256_file(config.config);
        const fs::path src = work / "src";
        for (const auto& built_ko : built) {
            const auto modinfo = read_modinfo(built_ko);
            try {
                check_vermagic(modinfo, release.release, arch);
                check_module_machine(built_ko, arch);
            } catch (const Error& e) {
                throw Error(built_ko.filename().string() + ": " + e.what());
            }
            // Signed beside the build tree (which is left as built), then checked as the kernel
            // would: the signature over the bytes, by the configured certificate, in its hash.
            fs::path ko = built_ko;
            ModuleSignature signature;
            if (options_.signer) {
                ko = work / "signed" / std::to_string(staged.size()) / built_ko.filename();
                fs::create_directories(ko.parent_path());
                options_.signer->sign(built_ko, sig_hash, ko);
                try {
                    signature = options_.signer->verify(ko);
                } catch (const Error& e) {
                    throw Error("the signature check of the signed module failed: " + std::string(e.what()));
                }
                if (signature.hash != sig_hash)
                    throw Error(ko.filename().string() + ": signed with " + signature.hash + ", not the kernel's " +
                                sig_hash);
            }
            std::string version = options_.module_version;
            if (version.empty() && modinfo.count("version")) version = modinfo.at("version");
            if (version.empty()) version = "src-" + source_digest_.substr(0, 12);
            const std::string name =
                artifact_name(options_.naming, {ko.stem().string(), version, release.arch, release.release,
                                                release.kernelversion, config.md5, config_sha256, record.target,
                                                release.distro, release.variant, machine_of(release.arch)});
            for (const auto& other : staged)
                if (other.name == name)
                    throw Error(name + ": the artifact of both " + fs::relative(other.module, src).string() + " and " +
                                fs::relative(built_ko, src).string() +
                                "; the naming cannot tell them apart (add {module})");
            const fs::path final_path = options_.out_dir / name;
            fs::create_directories(final_path.parent_path());
            Staged next{name, final_path.string() + ".tmp-" + owned_suffix(), built_ko, {}};
            staged.push_back(next);
            if (name.size() > 3 && name.compare(name.size() - 3, 3, ".gz") == 0) {
                gzip_file(ko, next.file);
            } else {
                fs::copy_file(ko, next.file, fs::copy_options::overwrite_existing);
            }
            staged.back().artifact = {name, sha256_file(next.file.string()),
                                      modinfo.count("vermagic") ? modinfo.at("vermagic") : "", signature};
            record.module_version = version;
        }
        record.duration_s = seconds_since(started);
        record.finished_at = utc_now();
        commit(record, staged);
        committed = true;
    } catch (const std::exception& e) {
        stop_here_if_interrupted();  // a failure the interruption caused is not the target's
        record.status = TargetStatus::failed;
        record.reason = e.what();
        record.unverified = unverified_of(release);
        std::ofstream(log_dir / log_name, std::ios::app) << "kbuild: " << record.reason << '\n';
    }
    for (const auto& s : staged) {
        std::error_code ec;
        fs::remove(s.file, ec);
    }
    std::error_code ec;
    fs::remove_all(work, ec);
    if (committed) return record;
    record.duration_s = seconds_since(started);
    record.finished_at = utc_now();
    index_.put(record);
    return record;
}

}  // namespace kbuild
