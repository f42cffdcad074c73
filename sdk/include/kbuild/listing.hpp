// The entries of an HTTP server's directory index page (the autoindex of nginx, Apache,
// lighttpd...): what release servers and build systems without repository metadata offer
// (Flatcar's release server, Fedora's build system).
#pragma once

#include <kbuild/plugin.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace kbuild {

// The hrefs naming something directly inside the listed directory, %-decoded, in page order,
// each once; a subdirectory keeps its trailing '/' ("3510.2.0/"). Sort links ("?C=N;O=D"), the
// parent, absolute paths and links to other hosts are left out.
std::vector<std::string> directory_entries(std::string_view html);

// The entries of the directory at `url` (which ends with '/'), fetched through the host (with
// no checksum, so a cached listing is revalidated). Throws the fetch's error.
std::vector<std::string> list_directory(const Host& host, const std::string& url);

}  // namespace kbuild
