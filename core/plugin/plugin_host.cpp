#include "plugin/plugin_host.h"

#include "plugin/host_services.h"

#define BOOST_DLL_USE_STD_FS
#include <spdlog/spdlog.h>
#include <boost/dll/shared_library.hpp>

#include <dlfcn.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>

#ifndef KBUILD_PLUGIN_INSTALL_DIR
#define KBUILD_PLUGIN_INSTALL_DIR "/usr/local/lib/kbuild"
#endif

namespace fs = std::filesystem;

namespace kbuild {
namespace {

constexpr const char* kPrefix = "libkbuild-";
constexpr const char* kSuffix = ".so";

std::string abi_text(unsigned major, unsigned minor) {
    return std::to_string(major) + "." + std::to_string(minor);
}

const std::string kHostAbi = abi_text(KBUILD_PLUGIN_ABI_MAJOR, KBUILD_PLUGIN_ABI_MINOR);

bool is_plugin_file_name(const std::string& file) {
    const size_t p = std::strlen(kPrefix), s = std::strlen(kSuffix);
    return file.size() > p + s && file.compare(0, p, kPrefix) == 0 && file.compare(file.size() - s, s, kSuffix) == 0;
}

std::string name_from_file(const std::string& file) {
    return file.substr(std::strlen(kPrefix), file.size() - std::strlen(kPrefix) - std::strlen(kSuffix));
}

// The first required hook the table lacks, or null.
const char* missing_required_hook(const kb_plugin_api& api) {
    const std::pair<const char*, const void*> required[] = {
        {"create", reinterpret_cast<const void*>(api.create)},
        {"destroy", reinterpret_cast<const void*>(api.destroy)},
        {"last_error", reinterpret_cast<const void*>(api.last_error)},
        {"batch_packages", reinterpret_cast<const void*>(api.batch_packages)},
        {"unpack", reinterpret_cast<const void*>(api.unpack)},
        {"get_kernel_dir", reinterpret_cast<const void*>(api.get_kernel_dir)},
        {"hash_config", reinterpret_cast<const void*>(api.hash_config)},
    };
    for (const auto& [name, hook] : required)
        if (hook == nullptr) return name;
    return nullptr;
}

// Checks the table's header and copies what the plugin has into a zeroed host-sized table.
// Returns the reason for refusing it, or an empty string.
std::string read_table(const kb_plugin_api* exported, kb_plugin_api& api) {
    if (exported == nullptr) return "kbuild_plugin_entry returned no table";
    const unsigned major = exported->abi_major, minor = exported->abi_minor;
    if (major != KBUILD_PLUGIN_ABI_MAJOR)
        return "plugin ABI " + abi_text(major, minor) + " is not compatible with kbuild's ABI " + kHostAbi +
               " (major versions differ)";
    if (minor > KBUILD_PLUGIN_ABI_MINOR)
        return "plugin ABI " + abi_text(major, minor) + " is newer than kbuild's ABI " + kHostAbi +
               " (rebuild the plugin against this SDK or upgrade kbuild)";
    if (exported->struct_size < KBUILD_PLUGIN_API_SIZE_1_0)
        return "plugin table is " + std::to_string(exported->struct_size) + " bytes, smaller than ABI 1.0's " +
               std::to_string(KBUILD_PLUGIN_API_SIZE_1_0);
    api = kb_plugin_api{};
    std::memcpy(&api, exported, std::min<size_t>(exported->struct_size, sizeof api));
    if (api.name == nullptr || *api.name == '\0') return "plugin has no name";
    if (api.version == nullptr) return "plugin has no version";
    if (api.distros == nullptr || api.distros[0] == nullptr) return "plugin serves no distro";
    if (const char* hook = missing_required_hook(api)) return std::string("missing required hook '") + hook + "'";
    return {};
}

}  // namespace

Plugin::Plugin(fs::path path, std::shared_ptr<void> library, const kb_plugin_api& api, std::vector<std::string> distros)
    : path_(std::move(path)),
      library_(std::move(library)),
      api_(api),
      name_(api.name),
      version_(api.version),
      builder_family_(api.builder_family ? api.builder_family : ""),
      distros_(std::move(distros)) {}

bool Plugin::serves(const std::string& distro) const {
    return std::find(distros_.begin(), distros_.end(), distro) != distros_.end();
}

const fs::path& PluginInstance::cache_dir() const {
    return services_->context().cache_dir;
}

std::optional<Description> description_of(const Plugin& plugin) {
    if (plugin.api().describe == nullptr) return std::nullopt;
    try {
        const HostContext context;
        PluginInstance instance(plugin, context);
        return instance.describe();
    } catch (const std::exception& e) {
        spdlog::warn("{}", e.what());
        return std::nullopt;
    }
}

std::vector<TargetInfo> served_targets(const Plugin& plugin, const std::optional<Description>& description) {
    std::vector<TargetInfo> targets;
    for (const auto& distro : plugin.distros()) {
        bool declared = false;
        if (description)
            for (const auto& t : description->targets)
                if (t.distro == distro && !t.name.empty()) {
                    targets.push_back(t);
                    declared = true;
                }
        if (!declared) targets.push_back({distro, distro});
    }
    return targets;
}

std::string Refusal::message() const {
    return path.string() + ": refused: " + reason;
}

std::optional<Refusal> PluginHost::load_file(const fs::path& path) {
    auto refuse = [&](std::string reason) {
        Refusal refusal{path, std::move(reason)};
        spdlog::warn("{}", refusal.message());
        refusals_.push_back(refusal);
        return refusal;
    };

    auto library = std::make_shared<boost::dll::shared_library>();
    std::error_code ec;
    library->load(path, boost::dll::load_mode::rtld_now | boost::dll::load_mode::rtld_local, ec);
    if (ec) {
        const char* why = ::dlerror();
        return refuse(std::string("cannot load: ") + (why ? why : ec.message()));
    }
    if (!library->has(KBUILD_PLUGIN_ENTRY_SYMBOL))
        return refuse("not a kbuild plugin (no 'kbuild_plugin_entry' symbol)");

    const auto entry = library->get<const kb_plugin_api*()>(KBUILD_PLUGIN_ENTRY_SYMBOL);
    kb_plugin_api api{};
    if (std::string reason = read_table(entry(), api); !reason.empty()) return refuse(reason);

    const std::string file = path.filename().string();
    if (is_plugin_file_name(file) && name_from_file(file) != api.name)
        return refuse("file name '" + file + "' does not match the plugin's name '" + api.name + "' (expected '" +
                      kPrefix + api.name + kSuffix + "')");

    // First on the search path wins each distro; a plugin left with none is refused.
    std::vector<std::string> claimed;
    for (const char* const* d = api.distros; *d != nullptr; ++d) {
        if (const Plugin* owner = find(*d)) {
            spdlog::warn("{}: distro '{}' is already served by {}; using that one", path.string(), *d,
                         owner->path().string());
        } else {
            claimed.emplace_back(*d);
        }
    }
    if (claimed.empty()) return refuse("every distro it serves is already served by an earlier plugin");
    plugins_.push_back(std::make_unique<Plugin>(path, library, api, std::move(claimed)));
    spdlog::debug("{}: loaded plugin {} {} (ABI {})", path.string(), api.name, api.version,
                  abi_text(api.abi_major, api.abi_minor));
    return std::nullopt;
}

void PluginHost::load_directories(const std::vector<fs::path>& directories) {
    std::set<fs::path> seen;
    for (const auto& dir : directories) {
        std::error_code ec;
        if (!fs::is_directory(dir, ec)) {
            spdlog::debug("plugin directory {} does not exist; skipped", dir.string());
            continue;
        }
        const fs::path canonical = fs::weakly_canonical(dir, ec);
        if (!seen.insert(canonical).second) continue;
        std::vector<fs::path> files;
        for (const auto& entry : fs::directory_iterator(dir, ec))
            if (is_plugin_file_name(entry.path().filename().string())) files.push_back(entry.path());
        if (ec) spdlog::warn("{}: {}", dir.string(), ec.message());
        std::sort(files.begin(), files.end());
        for (const auto& file : files) load_file(file);
    }
}

const Plugin* PluginHost::find(const std::string& distro) const {
    for (const auto& plugin : plugins_)
        if (plugin->serves(distro)) return plugin.get();
    return nullptr;
}

std::vector<std::string> PluginHost::known_distros() const {
    std::vector<std::string> out;
    for (const auto& plugin : plugins_) out.insert(out.end(), plugin->distros().begin(), plugin->distros().end());
    std::sort(out.begin(), out.end());
    return out;
}

std::vector<fs::path> PluginHost::default_directories() {
    std::vector<fs::path> dirs;
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) dirs.push_back((exe.parent_path().parent_path() / "lib" / "kbuild").lexically_normal());
    const fs::path installed = KBUILD_PLUGIN_INSTALL_DIR;
    if (dirs.empty() || dirs.front() != installed) dirs.push_back(installed);
    return dirs;
}

PluginInstance::PluginInstance(const Plugin& plugin, const HostContext& context, const Json& config)
    : plugin_(plugin), services_(std::make_unique<HostServices>(plugin.name(), context)) {
    Json document = config.is_object() ? config : Json::object();
    document["schema"] = kSchema;
    instance_ = plugin_.api().create(services_->table(), document.dump().c_str());
    if (instance_ == nullptr) throw Error(plugin_.name() + ": create failed");
}

PluginInstance::~PluginInstance() {
    plugin_.api().destroy(instance_);
}

template <class Result>
Result PluginInstance::call(Hook hook, const char* what, const std::string& request) {
    const std::string where = plugin_.name() + ": " + what;
    if (hook == nullptr) throw NotSupported(where + ": not supported by this plugin");
    const char* out = nullptr;
    const kb_status status = hook(instance_, request.c_str(), &out);
    if (status != KB_OK) {
        const char* why = plugin_.api().last_error(instance_);
        const std::string message = where + ": " + (why && *why ? why : "failed");
        if (status == KB_NOT_SUPPORTED) throw NotSupported(message);
        throw Error(message);
    }
    return from_document<Result>(out, where.c_str());
}

ReleaseList PluginInstance::crawl(const CrawlRequest& request) {
    services_->set_call(request.distro);
    return call<ReleaseList>(plugin_.api().crawl, "crawl", to_document(request));
}

ReleaseList PluginInstance::batch_packages(const BatchRequest& request) {
    services_->set_call(request.distro);
    return call<ReleaseList>(plugin_.api().batch_packages, "batch_packages", to_document(request));
}

UnpackResult PluginInstance::unpack(const UnpackRequest& request) {
    std::vector<std::string> handed;
    for (const auto& package : request.release.packages)
        if (!package.path.empty()) handed.push_back(package.path);
    services_->set_call(request.release.distro, std::move(handed));
    return call<UnpackResult>(plugin_.api().unpack, "unpack", to_document(request));
}

KernelDir PluginInstance::get_kernel_dir(const KernelDirRequest& request) {
    return call<KernelDir>(plugin_.api().get_kernel_dir, "get_kernel_dir", to_document(request));
}

ConfigHash PluginInstance::hash_config(const ConfigHashRequest& request) {
    return call<ConfigHash>(plugin_.api().hash_config, "hash_config", to_document(request));
}

std::optional<Description> PluginInstance::describe() {
    auto hook = plugin_.api().describe;
    if (hook == nullptr) return std::nullopt;
    // describe takes no request; adapt it to the common call shape.
    const char* out = nullptr;
    if (hook(instance_, &out) != KB_OK) {
        const char* why = plugin_.api().last_error(instance_);
        throw Error(plugin_.name() + ": describe: " + (why && *why ? why : "failed"));
    }
    return from_document<Description>(out, (plugin_.name() + ": describe").c_str());
}

std::optional<std::vector<size_t>> PluginInstance::order_releases(const std::string& distro,
                                                                  const std::vector<Release>& releases) {
    if (plugin_.api().order_releases == nullptr) return std::nullopt;
    services_->set_call(distro);
    const ReleaseOrder answer = call<ReleaseOrder>(plugin_.api().order_releases, "order_releases",
                                                   to_document(ReleaseOrderRequest{distro, releases}));
    // Every index once: anything else would drop or repeat a release.
    std::vector<bool> seen(releases.size(), false);
    for (const size_t i : answer.order) {
        if (i >= releases.size() || seen[i])
            throw Error(plugin_.name() + ": order_releases: the answer is not an order of the " +
                        std::to_string(releases.size()) + " releases asked (index " + std::to_string(i) + ")");
        seen[i] = true;
    }
    if (answer.order.size() != releases.size())
        throw Error(plugin_.name() + ": order_releases: the answer orders " + std::to_string(answer.order.size()) +
                    " of the " + std::to_string(releases.size()) + " releases asked");
    return answer.order;
}

}  // namespace kbuild
