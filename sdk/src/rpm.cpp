#include <kbuild/rpm.hpp>

#include <kbuild/decompress.hpp>
#include <kbuild/types.hpp>

#include <expat.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <exception>
#include <memory>

namespace kbuild::rpm {
namespace {

// ---- version comparison ----

// rpm's own ctype: ASCII only, whatever the locale.
bool is_digit(char c) {
    return c >= '0' && c <= '9';
}
bool is_alpha(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_alnum(char c) {
    return is_digit(c) || is_alpha(c);
}

// Digit strings without leading zeros, compared as numbers of any length.
int compare_numbers(std::string_view a, std::string_view b) {
    while (!a.empty() && a.front() == '0') a.remove_prefix(1);
    while (!b.empty() && b.front() == '0') b.remove_prefix(1);
    if (a.size() != b.size()) return a.size() < b.size() ? -1 : 1;
    const int c = a.compare(b);
    return (c > 0) - (c < 0);
}

struct Evr {
    std::string_view epoch;  // "" when missing or empty: 0
    std::string_view version;
    std::string_view release;
    bool has_release = false;
};

// As rpm's parseEVR: an epoch is the leading digits when a ':' follows them; the release
// follows the last '-' after that.
Evr split_evr(std::string_view evr) {
    Evr split;
    std::size_t digits = 0;
    while (digits < evr.size() && is_digit(evr[digits])) ++digits;
    if (digits < evr.size() && evr[digits] == ':') {
        split.epoch = evr.substr(0, digits);
        evr.remove_prefix(digits + 1);
    }
    const std::size_t hyphen = evr.rfind('-');
    split.version = evr.substr(0, hyphen);
    if (hyphen != std::string_view::npos) {
        split.release = evr.substr(hyphen + 1);
        split.has_release = true;
    }
    return split;
}

// ---- small text helpers ----

bool is_space(char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// A non-negative decimal number, blanks around it allowed; nullopt otherwise.
std::optional<std::int64_t> parse_size(std::string_view text) {
    text = trim(text);
    std::int64_t value = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) return std::nullopt;
    return value;
}

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

// "%2B" -> "+"; a '%' not followed by two hex digits stays as it is.
std::string url_decode(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2])));
            i += 2;
        } else {
            out.push_back(text[i]);
        }
    }
    return out;
}

// ---- files ----

constexpr std::size_t kChunkSize = std::size_t(256) << 10;

class InputFile {
public:
    explicit InputFile(const std::string& path) : path_(path) {
        fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) throw Error(path + ": cannot open: " + std::strerror(errno));
    }
    ~InputFile() { ::close(fd_); }
    InputFile(const InputFile&) = delete;
    InputFile& operator=(const InputFile&) = delete;

    const std::string& path() const { return path_; }

    std::int64_t size() const {
        struct stat st {};
        if (::fstat(fd_, &st) != 0) throw Error(path_ + ": cannot stat: " + std::strerror(errno));
        return st.st_size;
    }

    // Up to size bytes; 0 only at the end of the file.
    std::size_t read(void* out, std::size_t size) {
        for (;;) {
            const ssize_t got = ::read(fd_, out, size);
            if (got >= 0) return static_cast<std::size_t>(got);
            if (errno != EINTR) throw Error(path_ + ": cannot read: " + std::strerror(errno));
        }
    }

    // Fills out completely unless the file ends first.
    std::size_t read_full(void* out, std::size_t size) {
        std::size_t total = 0;
        while (total < size) {
            const std::size_t got = read(static_cast<char*>(out) + total, size - total);
            if (got == 0) break;
            total += got;
        }
        return total;
    }

private:
    std::string path_;
    int fd_ = -1;
};

// ---- XML ----

// Expat joins a namespaced name as "<namespace URI><kNsSeparator><local name>". Elements are
// matched by local name and position, so a document that binds other prefixes (or none) reads
// the same.
constexpr char kNsSeparator = ' ';

std::string_view local_name(const XML_Char* name) {
    const std::string_view full(name);
    const std::size_t separator = full.rfind(kNsSeparator);
    return separator == std::string_view::npos ? full : full.substr(separator + 1);
}

// The attribute with this local name, or nullptr.
const XML_Char* attribute(const XML_Char** attributes, std::string_view name) {
    for (const XML_Char** a = attributes; *a != nullptr; a += 2)
        if (local_name(a[0]) == name) return a[1];
    return nullptr;
}

std::string attribute_or(const XML_Char** attributes, std::string_view name, std::string_view fallback) {
    const XML_Char* value = attribute(attributes, name);
    return std::string(value != nullptr ? std::string_view(value) : fallback);
}

// What an XML document's reader does with its events. Handlers may throw: the parse stops and
// the exception leaves XmlParser::parse (it never unwinds through expat's C frames).
class XmlHandler {
public:
    virtual ~XmlHandler() = default;
    virtual void start(std::string_view name, const XML_Char** attributes) = 0;
    virtual void end(std::string_view name) = 0;
    virtual void text(std::string_view text) = 0;
};

class XmlParser {
public:
    XmlParser(XmlHandler& handler, std::string origin)
        : handler_(handler), origin_(std::move(origin)), parser_(XML_ParserCreateNS(nullptr, kNsSeparator)) {
        if (parser_ == nullptr) throw Error(origin_ + ": cannot start the XML parser");
        XML_SetUserData(parser_, this);
        XML_SetElementHandler(parser_, &XmlParser::on_start, &XmlParser::on_end);
        XML_SetCharacterDataHandler(parser_, &XmlParser::on_text);
    }
    ~XmlParser() { XML_ParserFree(parser_); }
    XmlParser(const XmlParser&) = delete;
    XmlParser& operator=(const XmlParser&) = delete;

    // Space for the next size bytes, parsed by parse_buffer (no copy).
    char* buffer(std::size_t size) {
        void* space = XML_GetBuffer(parser_, static_cast<int>(size));
        if (space == nullptr) throw Error(origin_ + ": out of memory parsing XML");
        return static_cast<char*>(space);
    }

    // Parses the next size bytes of buffer(); is_final with the last of the document.
    void parse_buffer(std::size_t size, bool is_final) {
        check(XML_ParseBuffer(parser_, static_cast<int>(size), is_final ? XML_TRUE : XML_FALSE));
    }

    void parse(std::string_view text) {
        // XML_Parse takes an int length: whole documents in memory are fed in pieces.
        constexpr std::size_t kPiece = std::size_t(1) << 30;
        do {
            const std::size_t size = std::min(text.size(), kPiece);
            const bool is_final = size == text.size();
            check(XML_Parse(parser_, text.data(), static_cast<int>(size), is_final ? XML_TRUE : XML_FALSE));
            text.remove_prefix(size);
        } while (!text.empty());
    }

private:
    void check(XML_Status status) {
        if (failure_) std::rethrow_exception(failure_);
        if (status == XML_STATUS_ERROR)
            throw Error(origin_ + ": XML error at line " + std::to_string(XML_GetCurrentLineNumber(parser_)) +
                        ", column " + std::to_string(XML_GetCurrentColumnNumber(parser_) + 1) + ": " +
                        XML_ErrorString(XML_GetErrorCode(parser_)));
    }

    // Runs a handler; an exception is kept for check() and stops the parser. Expat may still
    // deliver an event or two after XML_StopParser: they are dropped.
    template <typename F>
    static void dispatch(void* data, F&& f) {
        auto* self = static_cast<XmlParser*>(data);
        if (self->failure_) return;
        try {
            f(self->handler_);
        } catch (...) {
            self->failure_ = std::current_exception();
            XML_StopParser(self->parser_, XML_FALSE);
        }
    }

    static void on_start(void* data, const XML_Char* name, const XML_Char** attributes) {
        dispatch(data, [&](XmlHandler& h) { h.start(local_name(name), attributes); });
    }
    static void on_end(void* data, const XML_Char* name) {
        dispatch(data, [&](XmlHandler& h) { h.end(local_name(name)); });
    }
    static void on_text(void* data, const XML_Char* text, int size) {
        dispatch(data, [&](XmlHandler& h) { h.text(std::string_view(text, static_cast<std::size_t>(size))); });
    }

    XmlHandler& handler_;
    std::string origin_;
    XML_Parser parser_;
    std::exception_ptr failure_;
};

// ---- repomd.xml ----

//   <repomd>                                   depth 1
//     <data type="primary">                    depth 2
//       <checksum type="sha256">...</checksum> depth 3, and open-checksum, location, size,
//       ...                                    open-size
class RepomdReader : public XmlHandler {
public:
    explicit RepomdReader(std::string_view origin) : origin_(origin) {}

    std::vector<RepoData> data;

    void start(std::string_view name, const XML_Char** attributes) override {
        ++depth_;
        text_ = nullptr;
        number_field_ = nullptr;  // text is only a field's while no element interrupts it
        if (depth_ == 1 && name != "repomd")
            throw Error(origin_ + ": not a repomd.xml (root element <" + std::string(name) + ">)");
        if (depth_ == 2 && name == "data") {
            data.emplace_back();
            data.back().type = attribute_or(attributes, "type", "");
            in_data_ = true;
            return;
        }
        if (depth_ != 3 || !in_data_) return;
        RepoData& d = data.back();
        if (name == "checksum") {
            d.checksum_type = attribute_or(attributes, "type", "");
            capture(d.checksum);
        } else if (name == "open-checksum") {
            capture(d.open_checksum);
        } else if (name == "location") {
            d.location = attribute_or(attributes, "href", "");
        } else if (name == "size" || name == "open-size") {
            capture(number_);
            number_field_ = name == "size" ? &d.size : &d.open_size;
        }
    }

    void end(std::string_view name) override {
        if (text_ != nullptr) *text_ = std::string(trim(*text_));
        text_ = nullptr;
        if (number_field_ != nullptr) {
            const std::optional<std::int64_t> value = parse_size(number_);
            if (!value)
                throw Error(origin_ + ": <data type=\"" + data.back().type + "\">: <" + std::string(name) +
                            "> is not a size: \"" + number_ + "\"");
            *number_field_ = *value;
            number_field_ = nullptr;
        }
        if (depth_ == 2 && in_data_) {
            in_data_ = false;
            const RepoData& d = data.back();
            if (d.type.empty()) throw Error(origin_ + ": a <data> element has no type");
            if (d.location.empty()) throw Error(origin_ + ": <data type=\"" + d.type + "\"> has no location");
        }
        --depth_;
    }

    void text(std::string_view text) override {
        if (text_ != nullptr) text_->append(text);
    }

private:
    void capture(std::string& target) {
        target.clear();
        text_ = &target;
    }

    std::string origin_;
    int depth_ = 0;
    bool in_data_ = false;
    std::string* text_ = nullptr;  // the field the current element's text goes to
    std::string number_;
    std::int64_t* number_field_ = nullptr;
};

// ---- primary.xml ----

//   <metadata>                                           depth 1
//     <package type="rpm">                               depth 2
//       <name>, <arch>, <version epoch ver rel/>,        depth 3
//       <checksum type>, <size package/>, <location href/>,
//       <format>
//         <rpm:sourcerpm>, <rpm:provides>, <rpm:requires> depth 4
//           <rpm:entry name=".."/>                        depth 5
class PrimaryReader : public XmlHandler {
public:
    PrimaryReader(const std::string& path, const std::function<bool(std::string_view)>& wanted,
                  const std::function<void(const Package&)>& fn)
        : path_(path), wanted_(wanted), fn_(fn) {}

    void start(std::string_view name, const XML_Char** attributes) override {
        ++depth_;
        text_ = nullptr;
        if (depth_ == 1 && name != "metadata")
            throw Error(path_ + ": not a primary.xml (root element <" + std::string(name) + ">)");
        if (depth_ == 2) {
            if (name == "package") begin_package();
            return;
        }
        if (state_ == State::Outside || state_ == State::Skipped) return;
        if (depth_ == 3) {
            if (name == "name") {
                capture(package_.name);
            } else if (name == "arch") {
                capture(package_.arch);
            } else if (name == "version") {
                package_.epoch = attribute_or(attributes, "epoch", "0");
                if (package_.epoch.empty()) package_.epoch = "0";
                package_.version = attribute_or(attributes, "ver", "");
                package_.release = attribute_or(attributes, "rel", "");
            } else if (name == "checksum") {
                package_.checksum_type = attribute_or(attributes, "type", "");
                capture(package_.checksum);
            } else if (name == "size") {
                if (const XML_Char* value = attribute(attributes, "package")) {
                    const std::optional<std::int64_t> size = parse_size(value);
                    if (!size)
                        throw Error(path_ + ": package " + package_.name + ": <size package> is not a size: \"" +
                                    value + "\"");
                    package_.size = *size;
                }
            } else if (name == "location") {
                package_.location = attribute_or(attributes, "href", "");
            } else if (name == "format") {
                in_format_ = true;
            }
        } else if (depth_ == 4 && in_format_) {
            if (name == "sourcerpm")
                capture(package_.sourcerpm);
            else if (name == "provides")
                entries_ = &package_.provides;
            else if (name == "requires")
                entries_ = &package_.requires_;
        } else if (depth_ == 5 && entries_ != nullptr && name == "entry") {
            if (const XML_Char* entry = attribute(attributes, "name")) entries_->emplace_back(entry);
        }
    }

    void end(std::string_view name) override {
        if (text_ != nullptr) {
            *text_ = std::string(trim(*text_));
            // The name decides, as soon as it is known, whether the rest is built up.
            if (text_ == &package_.name && state_ == State::Undecided)
                state_ = wanted_(package_.name) ? State::Wanted : State::Skipped;
            text_ = nullptr;
        }
        if (depth_ == 2 && name == "package" && state_ != State::Outside) {
            // A package without <name> is still offered, with an empty name.
            if (state_ == State::Undecided && wanted_(package_.name)) state_ = State::Wanted;
            if (state_ == State::Wanted) fn_(package_);
            state_ = State::Outside;
        } else if (depth_ == 3 && name == "format") {
            in_format_ = false;
        } else if (depth_ == 4) {
            entries_ = nullptr;
        }
        --depth_;
    }

    void text(std::string_view text) override {
        if (text_ != nullptr) text_->append(text);
    }

private:
    enum class State { Outside, Undecided, Wanted, Skipped };

    void begin_package() {
        // Cleared field by field: the strings and vectors keep their capacity.
        for (std::string* s : {&package_.name, &package_.arch, &package_.version, &package_.release, &package_.location,
                               &package_.checksum_type, &package_.checksum, &package_.sourcerpm})
            s->clear();
        package_.epoch = "0";
        package_.size = -1;
        package_.provides.clear();
        package_.requires_.clear();
        state_ = State::Undecided;
        in_format_ = false;
        entries_ = nullptr;
    }

    void capture(std::string& target) {
        target.clear();
        text_ = &target;
    }

    const std::string& path_;
    const std::function<bool(std::string_view)>& wanted_;
    const std::function<void(const Package&)>& fn_;
    Package package_;
    State state_ = State::Outside;
    int depth_ = 0;
    bool in_format_ = false;
    std::vector<std::string>* entries_ = nullptr;  // provides or requires, inside their element
    std::string* text_ = nullptr;
};

// ---- rpm headers ----

// The rpm file format (rpm's lib/rpmlead.c, lib/header.c): a 96-byte lead, a signature header
// padded to a multiple of 8 bytes, then the main header. A header is a 16-byte intro (magic,
// 4 reserved bytes, index entry count, data size: big-endian), the index (16 bytes per entry:
// tag, type, offset into the data, count) and the data.
constexpr std::size_t kLeadSize = 96;
constexpr std::array<unsigned char, 4> kLeadMagic{0xED, 0xAB, 0xEE, 0xDB};
constexpr std::array<unsigned char, 4> kHeaderMagic{0x8E, 0xAD, 0xE8, 0x01};
constexpr std::uint16_t kHeaderSignatures = 5;  // the lead's signature type of every rpm v3/v4
// rpm's own sanity limits (hdrchkTags, hdrchkData).
constexpr std::uint32_t kMaxIndexEntries = 0x00FFFFFF;
constexpr std::uint32_t kMaxDataSize = 0x3FFFFFFF;

enum TagType : std::uint32_t { kInt32 = 4, kString = 6, kStringArray = 8 };

enum Tag : std::uint32_t {
    kName = 1000,
    kVersion = 1001,
    kRelease = 1002,
    kEpoch = 1003,
    kArch = 1022,
    kSourceRpm = 1044,
    kProvideName = 1047,
    kRequireName = 1049,
    kNoSource = 1051,
    kNoPatch = 1052,
};

std::uint32_t be32(const unsigned char* p) {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | std::uint32_t(p[3]);
}

struct HeaderBlob {
    std::uint32_t entries = 0;
    std::vector<unsigned char> bytes;  // index then data
    std::size_t total = 0;             // intro + index + data

    const unsigned char* entry(std::uint32_t i) const { return bytes.data() + 16 * std::size_t(i); }
    const unsigned char* data() const { return bytes.data() + 16 * std::size_t(entries); }
    std::size_t data_size() const { return bytes.size() - 16 * std::size_t(entries); }
};

// Reads one header at the file's position; `what` names it in errors. `remaining` is what the
// file holds from here, so a damaged count cannot make us allocate more than the file.
HeaderBlob read_header_blob(InputFile& file, std::int64_t remaining, const std::string& what) {
    unsigned char intro[16];
    if (file.read_full(intro, sizeof intro) < sizeof intro) throw Error(file.path() + ": " + what + " truncated");
    if (!std::equal(kHeaderMagic.begin(), kHeaderMagic.end(), intro))
        throw Error(file.path() + ": " + what + ": bad magic");
    HeaderBlob blob;
    blob.entries = be32(intro + 8);
    const std::uint32_t data_size = be32(intro + 12);
    if (blob.entries > kMaxIndexEntries)
        throw Error(file.path() + ": " + what + ": bad index entry count " + std::to_string(blob.entries));
    if (data_size > kMaxDataSize)
        throw Error(file.path() + ": " + what + ": bad data size " + std::to_string(data_size));
    const std::size_t size = 16 * std::size_t(blob.entries) + data_size;
    if (static_cast<std::int64_t>(sizeof intro + size) > remaining)
        throw Error(file.path() + ": " + what + " truncated");
    blob.bytes.resize(size);
    if (file.read_full(blob.bytes.data(), size) < size) throw Error(file.path() + ": " + what + " truncated");
    blob.total = sizeof intro + size;
    return blob;
}

// The tags read_header wants from the main header, bounds-checked against its data.
class HeaderReader {
public:
    HeaderReader(const HeaderBlob& blob, const std::string& path) : blob_(blob), path_(path) {}

    // Calls fn(tag, type, offset, count) for each index entry of these tags.
    template <typename F>
    void for_each(F&& fn) const {
        for (std::uint32_t i = 0; i < blob_.entries; ++i) {
            const unsigned char* e = blob_.entry(i);
            fn(be32(e), be32(e + 4), be32(e + 8), be32(e + 12));
        }
    }

    std::string string(std::uint32_t tag, std::uint32_t type, std::uint32_t offset, std::uint32_t count) const {
        expect(tag, type, kString);
        if (count != 1) fail(tag, "a string with count " + std::to_string(count));
        std::size_t pos = offset;
        return next_string(tag, pos);
    }

    std::vector<std::string> strings(std::uint32_t tag, std::uint32_t type, std::uint32_t offset,
                                     std::uint32_t count) const {
        expect(tag, type, kStringArray);
        // Each string takes at least one byte: a count beyond the data is damage, not a size to
        // reserve.
        if (count > blob_.data_size()) fail(tag, "more strings than the header has bytes");
        std::vector<std::string> out;
        out.reserve(count);
        std::size_t pos = offset;
        for (std::uint32_t i = 0; i < count; ++i) out.push_back(next_string(tag, pos));
        return out;
    }

    std::uint32_t int32(std::uint32_t tag, std::uint32_t type, std::uint32_t offset, std::uint32_t count) const {
        expect(tag, type, kInt32);
        if (count < 1) fail(tag, "an empty integer array");
        if (std::size_t(offset) + 4 > blob_.data_size()) fail(tag, "data past the header's end");
        return be32(blob_.data() + offset);
    }

private:
    // The NUL-terminated string at pos; pos moves past it.
    std::string next_string(std::uint32_t tag, std::size_t& pos) const {
        const std::size_t size = blob_.data_size();
        if (pos >= size) fail(tag, "data past the header's end");
        const auto* begin = reinterpret_cast<const char*>(blob_.data()) + pos;
        const void* nul = std::memchr(begin, '\0', size - pos);
        if (nul == nullptr) fail(tag, "a string running past the header's end");
        const std::size_t length = static_cast<const char*>(nul) - begin;
        pos += length + 1;
        return std::string(begin, length);
    }

    void expect(std::uint32_t tag, std::uint32_t type, std::uint32_t wanted) const {
        if (type != wanted) fail(tag, "type " + std::to_string(type) + ", expected " + std::to_string(wanted));
    }

    [[noreturn]] void fail(std::uint32_t tag, const std::string& what) const {
        throw Error(path_ + ": corrupt header: tag " + std::to_string(tag) + " has " + what);
    }

    const HeaderBlob& blob_;
    const std::string& path_;
};

}  // namespace

int compare_segments(std::string_view a, std::string_view b) {
    if (a == b) return 0;
    std::size_t i = 0, j = 0;
    const auto at = [](std::string_view s, std::size_t k) { return k < s.size() ? s[k] : '\0'; };
    while (i < a.size() || j < b.size()) {
        while (i < a.size() && !is_alnum(a[i]) && a[i] != '~' && a[i] != '^') ++i;
        while (j < b.size() && !is_alnum(b[j]) && b[j] != '~' && b[j] != '^') ++j;
        const char x = at(a, i), y = at(b, j);

        // '~' sorts before everything, the end included.
        if (x == '~' || y == '~') {
            if (x != '~') return 1;
            if (y != '~') return -1;
            ++i, ++j;
            continue;
        }
        // '^' sorts after the end but before everything else.
        if (x == '^' || y == '^') {
            if (i >= a.size()) return -1;
            if (j >= b.size()) return 1;
            if (x != '^') return 1;
            if (y != '^') return -1;
            ++i, ++j;
            continue;
        }
        if (i >= a.size() || j >= b.size()) break;

        // One run of digits or of letters, of the kind a's run is.
        const bool numeric = is_digit(x);
        const auto in_run = [numeric](char c) { return numeric ? is_digit(c) : is_alpha(c); };
        std::size_t i_end = i, j_end = j;
        while (i_end < a.size() && in_run(a[i_end])) ++i_end;
        while (j_end < b.size() && in_run(b[j_end])) ++j_end;
        // b has the other kind of run here: a digit run is newer than a letter run.
        if (j_end == j) return numeric ? 1 : -1;

        const std::string_view run_a = a.substr(i, i_end - i), run_b = b.substr(j, j_end - j);
        int c = 0;
        if (numeric) {
            c = compare_numbers(run_a, run_b);
        } else {
            const int raw = run_a.compare(run_b);
            c = (raw > 0) - (raw < 0);
        }
        if (c != 0) return c;
        i = i_end, j = j_end;
    }
    // Every run matched: the string with something left (a separator run) is newer.
    if (i >= a.size() && j >= b.size()) return 0;
    return i >= a.size() ? -1 : 1;
}

int compare_evr(std::string_view a, std::string_view b) {
    const Evr x = split_evr(a);
    const Evr y = split_evr(b);
    const int epoch = compare_numbers(x.epoch, y.epoch);
    if (epoch != 0) return epoch;
    const int version = compare_segments(x.version, y.version);
    if (version != 0) return version;
    if (x.has_release != y.has_release) return x.has_release ? 1 : -1;
    return compare_segments(x.release, y.release);
}

std::vector<RepoData> parse_repomd(std::string_view xml, std::string_view origin) {
    RepomdReader reader(origin);
    XmlParser parser(reader, std::string(origin));
    parser.parse(xml);
    return std::move(reader.data);
}

const RepoData* find(const std::vector<RepoData>& data, std::string_view type) {
    for (const RepoData& d : data)
        if (d.type == type) return &d;
    return nullptr;
}

void read_primary(const std::string& path, const std::function<bool(std::string_view name)>& wanted,
                  const std::function<void(const Package&)>& fn) {
    const std::unique_ptr<Decompressor> source = open_decompressed(path);
    PrimaryReader reader(path, wanted, fn);
    XmlParser parser(reader, path);
    // Decompressed straight into expat's buffer, a chunk at a time.
    for (;;) {
        char* buffer = parser.buffer(kChunkSize);
        const std::size_t got = source->read(buffer, kChunkSize);
        parser.parse_buffer(got, /*is_final=*/got == 0);
        if (got == 0) break;
    }
}

std::optional<Package> parse_file_name(const std::string& file) {
    const std::size_t slash = file.rfind('/');
    const std::string name = url_decode(std::string_view(file).substr(slash == std::string::npos ? 0 : slash + 1));
    // An escaped '/' or NUL cannot be part of a file name.
    if (name.find('/') != std::string::npos || name.find('\0') != std::string::npos) return std::nullopt;
    constexpr std::string_view kSuffix = ".rpm";
    if (name.size() <= kSuffix.size() || name.compare(name.size() - kSuffix.size(), kSuffix.size(), kSuffix) != 0)
        return std::nullopt;
    std::string_view nevra(name.data(), name.size() - kSuffix.size());

    const std::size_t dot = nevra.rfind('.');
    if (dot == std::string_view::npos) return std::nullopt;
    const std::string_view arch = nevra.substr(dot + 1);
    nevra = nevra.substr(0, dot);
    const std::size_t release_dash = nevra.rfind('-');
    if (release_dash == std::string_view::npos) return std::nullopt;
    const std::string_view release = nevra.substr(release_dash + 1);
    nevra = nevra.substr(0, release_dash);
    const std::size_t version_dash = nevra.rfind('-');
    if (version_dash == std::string_view::npos) return std::nullopt;
    const std::string_view version = nevra.substr(version_dash + 1);
    const std::string_view package_name = nevra.substr(0, version_dash);

    const auto plain = [](std::string_view s) {
        return !s.empty() && std::none_of(s.begin(), s.end(), [](char c) { return is_space(c) || c == '-'; });
    };
    if (package_name.empty() || !plain(arch) || !plain(release) || !plain(version)) return std::nullopt;
    Package p;
    p.name = std::string(package_name);
    p.version = std::string(version);
    p.release = std::string(release);
    p.arch = std::string(arch);
    return p;
}

Package read_header(const std::string& path) {
    InputFile file(path);
    const std::int64_t file_size = file.size();

    unsigned char lead[kLeadSize];
    const std::size_t got = file.read_full(lead, sizeof lead);
    if (got < kLeadMagic.size() || !std::equal(kLeadMagic.begin(), kLeadMagic.end(), lead))
        throw Error(path + ": not an rpm (bad lead magic)");
    if (got < sizeof lead) throw Error(path + ": lead truncated");
    const std::uint16_t signature_type = std::uint16_t(lead[78] << 8 | lead[79]);
    if (signature_type != kHeaderSignatures)
        throw Error(path + ": unsupported signature type " + std::to_string(signature_type));

    std::int64_t position = kLeadSize;
    const HeaderBlob signature = read_header_blob(file, file_size - position, "signature header");
    position += static_cast<std::int64_t>(signature.total);
    // The signature header is padded to a multiple of 8 bytes.
    const std::size_t padding = (8 - signature.total % 8) % 8;
    unsigned char pad[8];
    if (file.read_full(pad, padding) < padding) throw Error(path + ": header truncated");
    position += static_cast<std::int64_t>(padding);
    const HeaderBlob header = read_header_blob(file, file_size - position, "header");

    Package p;
    p.size = file_size;
    bool has_sourcerpm = false, no_source = false;
    const HeaderReader reader(header, path);
    reader.for_each([&](std::uint32_t tag, std::uint32_t type, std::uint32_t offset, std::uint32_t count) {
        switch (tag) {
            case kName: p.name = reader.string(tag, type, offset, count); break;
            case kVersion: p.version = reader.string(tag, type, offset, count); break;
            case kRelease: p.release = reader.string(tag, type, offset, count); break;
            case kArch: p.arch = reader.string(tag, type, offset, count); break;
            case kEpoch: p.epoch = std::to_string(reader.int32(tag, type, offset, count)); break;
            case kSourceRpm:
                p.sourcerpm = reader.string(tag, type, offset, count);
                has_sourcerpm = true;
                break;
            case kProvideName: p.provides = reader.strings(tag, type, offset, count); break;
            case kRequireName: p.requires_ = reader.strings(tag, type, offset, count); break;
            case kNoSource:
            case kNoPatch: no_source = true; break;
            default: break;
        }
    });
    if (p.name.empty()) throw Error(path + ": corrupt header: no name (tag 1000)");
    if (p.version.empty()) throw Error(path + ": corrupt header: no version (tag 1001)");
    if (p.release.empty()) throw Error(path + ": corrupt header: no release (tag 1002)");
    if (p.epoch.empty()) p.epoch = "0";
    // As rpm (headerIsSource) and createrepo tell it: a package without SOURCERPM is a source
    // package, whose arch is "src" ("nosrc" when it leaves sources out) whatever its header's
    // ARCH (the build host's) says; the file name and primary.xml say the same.
    if (!has_sourcerpm) p.arch = no_source ? "nosrc" : "src";
    if (p.arch.empty()) throw Error(path + ": corrupt header: no arch (tag 1022)");
    return p;
}

}  // namespace kbuild::rpm
