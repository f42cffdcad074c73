// Header-only C++17 layer over plugin_api.h: a plugin author writes a plain class and one macro.
//
//   #include <kbuild/plugin.hpp>
//
//   class MyDistro {
//   public:
//       MyDistro(kbuild::Host& host, const kbuild::Json& config);
//       kbuild::ReleaseList batch_packages(const kbuild::BatchRequest&);
//       kbuild::KernelDir get_kernel_dir(const kbuild::KernelDirRequest&);
//       // optional:
//       kbuild::ReleaseList crawl(const kbuild::CrawlRequest&);
//       kbuild::Description describe();              // options, targets ("mydistro-<flavour>")
//       int compare_releases(const kbuild::Release& a, const kbuild::Release& b);  // <0 a older
//       kbuild::UnpackResult unpack(const kbuild::UnpackRequest&);       // default: extract all
//       kbuild::ConfigHash hash_config(const kbuild::ConfigHashRequest&); // default: .config's MD5
//   };
//   KBUILD_PLUGIN(MyDistro, "mydistro", "1.0.0", "debian", "mydistro", "mydistro-lts")
//
// The macro's arguments: class, plugin name (the file is libkbuild-<name>.so), plugin version,
// preferred builder family ("" for none: the kernel's compiler alone picks), then every distro
// name served. Every hook is noexcept: an exception thrown by the class becomes KB_ERROR
// (kbuild::NotSupported: KB_NOT_SUPPORTED) and its what() becomes last_error().
//
// Defaults: without unpack, every package's data is extracted into the one root the host gave
// (Host::extract_all); without hash_config, the MD5 of <kernel dir>/.config. Without
// compare_releases the host orders releases by a natural version compare (plugin_api.h).
//
// An optional hook declared with a wrong signature (crawl taking a non-const CrawlRequest&,
// another return type) is a compile error naming the hook and the signature expected, not a
// hook silently left out. So is a member whose name is one typo away from a hook's (a letter
// left out, two swapped, one doubled, an "s" added: "descibe", "crawls", "hash_confg"), unless
// the class says the name is meant: `using kbuild_not_hooks = void;`.
#pragma once

#include <kbuild/plugin_api.h>
#include <kbuild/detail/hook_typos.hpp>
#include <kbuild/kernel_tree.hpp>
#include <kbuild/types.hpp>

#include <algorithm>
#include <memory>
#include <numeric>
#include <string>
#include <type_traits>
#include <utility>

namespace kbuild {

// The host's services as a plugin sees them. Failing services throw kbuild::Error.
class Host {
public:
    explicit Host(const kb_host_services* services) : services_(services) {}

    void log(kb_log_level level, const std::string& message) const {
        services_->log(services_->host, level, message.c_str());
    }
    void debug(const std::string& message) const { log(KB_LOG_DEBUG, message); }
    void info(const std::string& message) const { log(KB_LOG_INFO, message); }
    void warn(const std::string& message) const { log(KB_LOG_WARN, message); }
    void error(const std::string& message) const { log(KB_LOG_ERROR, message); }

    // Downloads (or finds in the cache) the package's url, checked against sha256 and size when
    // they are set.
    FetchedFile fetch(const Package& package) const {
        const char* out = call(offered(services_->fetch) ? services_->fetch : nullptr, "fetch", to_document(package));
        return from_document<FetchedFile>(out, "fetch");
    }

    ExtractResult extract(const ExtractRequest& request) const {
        const char* out =
            call(offered(services_->extract) ? services_->extract : nullptr, "extract", to_document(request));
        return from_document<ExtractResult>(out, "extract");
    }

    // Subtrees of a disk image's file system (ABI 1.3).
    ImageExtractResult extract_image(const ImageExtractRequest& request) const {
        const char* out = call(offered(services_->extract_image) ? services_->extract_image : nullptr, "extract_image",
                               to_document(request));
        return from_document<ImageExtractResult>(out, "extract_image");
    }

    // Checks a downloaded file's signature against the keys the host trusts for this source
    // (ABI 1.4). Throws kbuild::Error naming the URL and the cause; a host too old to verify is
    // an error too, so nothing signed is ever used unchecked.
    Verified verify(const VerifyRequest& request) const {
        if (!offered(services_->verify))
            throw Error(request.url + ": this kbuild host cannot check signatures (it is older than ABI 1.4)");
        const char* out = call(services_->verify, "verify", to_document(request));
        Verified verified = from_document<Verified>(out, "verify");
        if (verified.path.empty() || (verified.signed_by.empty() && verified.unverified.empty()))
            throw Error(request.url + ": verify answered neither a signer nor why it did not check");
        return verified;
    }

    // The usual unpack: every package's data extracted into the one root the host gave.
    UnpackResult extract_all(const UnpackRequest& request) const {
        for (const auto& package : request.release.packages) extract({package.path, request.dest, "data"});
        return {request.dest};
    }

    std::string cache_dir() const {
        const char* out = nullptr;
        if (services_->cache_dir(services_->host, &out) != KB_OK)
            throw Error(std::string("cache_dir: ") + (out ? out : "failed"));
        return out;
    }

    const kb_host_services* raw() const { return services_; }

private:
    using Service = kb_status (*)(void*, const char*, const char**);

    // A service field newer than the host that lent the table reads as absent.
    template <class F>
    bool offered(const F& field) const {
        const auto end = reinterpret_cast<const char*>(&field) + sizeof(field);
        return end <= reinterpret_cast<const char*>(services_) + services_->struct_size && field != nullptr;
    }

    const char* call(Service service, const char* what, const std::string& request) const {
        if (service == nullptr) throw NotSupported(std::string(what) + ": this kbuild host does not offer it");
        const char* out = nullptr;
        if (service(services_->host, request.c_str(), &out) != KB_OK)
            throw Error(out ? out : (std::string(what) + ": failed"));
        return out;
    }

    const kb_host_services* services_;
};

namespace detail {

// Hook detection. `named_X` says the class has a member called X (of any type); `fits_X` that
// it is callable as the hook must be. A member named like a hook that does not fit is a wrong
// signature, refused at compile time rather than silently left out of the table.
#define KBUILD_DETAIL_HOOK(hook, call, result)                                   \
    template <class P, class = void>                                             \
    struct named_##hook : std::false_type {};                                    \
    template <class P>                                                           \
    struct named_##hook<P, std::void_t<decltype(&P::hook)>> : std::true_type {}; \
    template <class P, class = void>                                             \
    struct fits_##hook : std::false_type {};                                     \
    template <class P>                                                           \
    struct fits_##hook<P, std::enable_if_t<std::is_convertible_v<decltype(call), result>>> : std::true_type {};

KBUILD_DETAIL_HOOK(crawl, std::declval<P&>().crawl(std::declval<const CrawlRequest&>()), ReleaseList)
KBUILD_DETAIL_HOOK(describe, std::declval<P&>().describe(), Description)
KBUILD_DETAIL_HOOK(compare_releases,
                   std::declval<P&>().compare_releases(std::declval<const Release&>(), std::declval<const Release&>()),
                   int)
KBUILD_DETAIL_HOOK(unpack, std::declval<P&>().unpack(std::declval<const UnpackRequest&>()), UnpackResult)
KBUILD_DETAIL_HOOK(hash_config, std::declval<P&>().hash_config(std::declval<const ConfigHashRequest&>()), ConfigHash)
#undef KBUILD_DETAIL_HOOK

// Whether the class means to offer an optional hook; a member named like it that does not fit
// fails here, naming the hook and the signature it must have.
template <class P>
constexpr bool check_hooks() {
    static_assert(!named_crawl<P>::value || fits_crawl<P>::value,
                  "kbuild plugin: crawl must be `kbuild::ReleaseList crawl(const kbuild::CrawlRequest&)`");
    static_assert(!named_describe<P>::value || fits_describe<P>::value,
                  "kbuild plugin: describe must be `kbuild::Description describe()`");
    static_assert(!named_compare_releases<P>::value || fits_compare_releases<P>::value,
                  "kbuild plugin: compare_releases must be `int compare_releases(const kbuild::Release&, "
                  "const kbuild::Release&)`");
    static_assert(!named_unpack<P>::value || fits_unpack<P>::value,
                  "kbuild plugin: unpack must be `kbuild::UnpackResult unpack(const kbuild::UnpackRequest&)`");
    static_assert(!named_hash_config<P>::value || fits_hash_config<P>::value,
                  "kbuild plugin: hash_config must be `kbuild::ConfigHash hash_config(const "
                  "kbuild::ConfigHashRequest&)`");
    return true;
}

template <class P, class = void>
struct allows_near_names : std::false_type {};
template <class P>
struct allows_near_names<P, std::void_t<typename P::kbuild_not_hooks>> : std::true_type {};

// A member one typo away from a hook's name is a misspelled hook, unless the class says not.
template <class P>
constexpr bool check_names() {
    if constexpr (!allows_near_names<P>::value) {
        using namespace typos;
        static_assert(!near_crawl<P>,
                      "kbuild plugin: a member is named one typo away from `crawl` "
                      "(declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_describe<P>,
                      "kbuild plugin: a member is named one typo away from `describe` "
                      "(declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_compare_releases<P>,
                      "kbuild plugin: a member is named one typo away from `compare_releases` "
                      "(declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_unpack<P>,
                      "kbuild plugin: a member is named one typo away from `unpack` "
                      "(declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_hash_config<P>,
                      "kbuild plugin: a member is named one typo away from "
                      "`hash_config` (declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_batch_packages<P>,
                      "kbuild plugin: a member is named one typo away from "
                      "`batch_packages` (declare `using kbuild_not_hooks = void;` if it is meant)");
        static_assert(!near_get_kernel_dir<P>,
                      "kbuild plugin: a member is named one typo away from "
                      "`get_kernel_dir` (declare `using kbuild_not_hooks = void;` if it is meant)");
    }
    return true;
}

template <class P>
struct Instance {
    explicit Instance(const kb_host_services* services) : host(services) {}
    Host host;
    std::unique_ptr<P> impl;
    std::string error;
    std::string out;
};

template <class P>
Instance<P>* instance(kb_plugin* plugin) {
    return reinterpret_cast<Instance<P>*>(plugin);
}

// Runs `body` (which returns a value with a JSON form), turning exceptions into status codes.
template <class P, class Body>
kb_status guarded(kb_plugin* plugin, const char** out, Body&& body) noexcept {
    Instance<P>* self = instance<P>(plugin);
    *out = nullptr;
    try {
        self->out = to_document(body(*self->impl));
        *out = self->out.c_str();
        return KB_OK;
    } catch (const NotSupported& e) {
        self->error = e.what();
        return KB_NOT_SUPPORTED;
    } catch (const std::exception& e) {
        self->error = e.what();
    } catch (...) {
        self->error = "unknown exception";
    }
    return KB_ERROR;
}

template <class Request>
Request request(const char* json, const char* hook) {
    return from_document<Request>(json, hook);
}

template <class P>
kb_plugin* create(const kb_host_services* services, const char* config_json) noexcept {
    auto self = std::make_unique<Instance<P>>(services);
    try {
        Json config = Json::parse(config_json ? config_json : "{}");
        self->impl = std::make_unique<P>(self->host, config);
    } catch (const std::exception& e) {
        self->host.error(std::string("create: ") + e.what());
        return nullptr;
    } catch (...) {
        self->host.error("create: unknown exception");
        return nullptr;
    }
    return reinterpret_cast<kb_plugin*>(self.release());
}

template <class P>
void destroy(kb_plugin* plugin) noexcept {
    delete instance<P>(plugin);
}

template <class P>
const char* last_error(kb_plugin* plugin) noexcept {
    return instance<P>(plugin)->error.c_str();
}

template <class P>
kb_status crawl(kb_plugin* plugin, const char* in, const char** out) noexcept {
    return guarded<P>(plugin, out, [&](P& p) { return p.crawl(request<CrawlRequest>(in, "crawl")); });
}

template <class P>
kb_status batch_packages(kb_plugin* plugin, const char* in, const char** out) noexcept {
    return guarded<P>(plugin, out, [&](P& p) { return p.batch_packages(request<BatchRequest>(in, "batch_packages")); });
}

template <class P>
kb_status unpack(kb_plugin* plugin, const char* in, const char** out) noexcept {
    Host& host = instance<P>(plugin)->host;
    return guarded<P>(plugin, out, [&](P& p) {
        const auto r = request<UnpackRequest>(in, "unpack");
        if constexpr (fits_unpack<P>::value)
            return UnpackResult(p.unpack(r));
        else
            return host.extract_all(r);  // the default: every package's data into the root
    });
}

template <class P>
kb_status get_kernel_dir(kb_plugin* plugin, const char* in, const char** out) noexcept {
    return guarded<P>(plugin, out,
                      [&](P& p) { return p.get_kernel_dir(request<KernelDirRequest>(in, "get_kernel_dir")); });
}

template <class P>
kb_status hash_config(kb_plugin* plugin, const char* in, const char** out) noexcept {
    return guarded<P>(plugin, out, [&](P& p) {
        const auto r = request<ConfigHashRequest>(in, "hash_config");
        if constexpr (fits_hash_config<P>::value)
            return ConfigHash(p.hash_config(r));
        else
            return config_in_kernel_dir(r);  // the default: <kernel dir>/.config's MD5
    });
}

// The releases' indices newest first: a stable sort by the class's compare_releases.
template <class P>
kb_status order_releases(kb_plugin* plugin, const char* in, const char** out) noexcept {
    return guarded<P>(plugin, out, [&](P& p) {
        const auto r = request<ReleaseOrderRequest>(in, "order_releases");
        ReleaseOrder order;
        order.order.resize(r.releases.size());
        std::iota(order.order.begin(), order.order.end(), std::size_t{0});
        std::stable_sort(order.order.begin(), order.order.end(), [&](std::size_t a, std::size_t b) {
            return p.compare_releases(r.releases[a], r.releases[b]) > 0;
        });
        return order;
    });
}

template <class P>
kb_status describe(kb_plugin* plugin, const char** out) noexcept {
    return guarded<P>(plugin, out, [](P& p) { return p.describe(); });
}

template <class P>
kb_plugin_api make_table(const char* name, const char* version, const char* builder_family,
                         const char* const* distros) {
    static_assert(check_hooks<P>() && check_names<P>());
    kb_plugin_api api{};
    api.struct_size = sizeof(kb_plugin_api);
    api.abi_major = KBUILD_PLUGIN_ABI_MAJOR;
    api.abi_minor = KBUILD_PLUGIN_ABI_MINOR;
    api.name = name;
    api.version = version;
    api.distros = distros;
    api.builder_family = builder_family;
    api.create = &create<P>;
    api.destroy = &destroy<P>;
    api.last_error = &last_error<P>;
    if constexpr (fits_crawl<P>::value) api.crawl = &crawl<P>;
    api.batch_packages = &batch_packages<P>;
    api.unpack = &unpack<P>;
    api.get_kernel_dir = &get_kernel_dir<P>;
    api.hash_config = &hash_config<P>;
    if constexpr (fits_describe<P>::value) api.describe = &describe<P>;
    if constexpr (fits_compare_releases<P>::value) api.order_releases = &order_releases<P>;
    return api;
}

}  // namespace detail
}  // namespace kbuild

#define KBUILD_PLUGIN(CLASS, NAME, VERSION, BUILDER_FAMILY, ...)                                                      \
    extern "C" __attribute__((visibility("default"))) const kb_plugin_api* kbuild_plugin_entry(void) {                \
        static const char* const distros[] = {__VA_ARGS__, nullptr};                                                  \
        static const kb_plugin_api api = ::kbuild::detail::make_table<CLASS>(NAME, VERSION, BUILDER_FAMILY, distros); \
        return &api;                                                                                                  \
    }
