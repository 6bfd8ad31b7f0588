#!/usr/bin/python3
# A WebKitGTK browser for WebKitWebDriver (test/support/browsers.ts), with storage on disk.
#
# Why not MiniBrowser: with --automation, stock MiniBrowser keeps every website data store in
# memory, so IndexedDB is gone after a crash and the crash-resume test has nothing to resume
# from. This launcher is the same few calls MiniBrowser makes for automation, on a persistent
# WebsiteDataManager under the profile directory given in EDGE_UPLOAD_WEBKIT_PROFILE (the driver
# passes its own arguments, such as --automation, which are ignored here).
#
# It also turns on what Safari ships and WebKitGTK leaves off by default: the Storage API
# (navigator.storage.persist / estimate) and the origin private file system with sync access
# handles.
#
# /usr/bin/python3 on purpose: Debian's python3-gi is installed for the system Python only (a
# pyenv python3 earlier on the PATH has no `gi`).
import os
import sys

import gi

gi.require_version("Gtk", "3.0")
gi.require_version("WebKit2", "4.1")
from gi.repository import GLib, Gtk, WebKit2  # noqa: E402

FEATURES_ON = ("StorageAPI", "StorageAPIEstimate", "FileSystem", "FileSystemWritableStream", "AccessHandle")


def main() -> int:
    profile = os.environ.get("EDGE_UPLOAD_WEBKIT_PROFILE")
    if not profile:
        print("webkit-launcher: EDGE_UPLOAD_WEBKIT_PROFILE is not set", file=sys.stderr)
        return 2
    data_manager = WebKit2.WebsiteDataManager(
        base_data_directory=os.path.join(profile, "data"),
        base_cache_directory=os.path.join(profile, "cache"),
    )
    context = WebKit2.WebContext(website_data_manager=data_manager)
    context.set_automation_allowed(True)

    settings = WebKit2.Settings()
    features = WebKit2.Settings.get_all_features()
    for i in range(features.get_length()):
        feature = features.get(i)
        if feature.get_identifier() in FEATURES_ON:
            settings.set_feature_enabled(feature, True)

    windows = []

    def create_web_view(_session):
        view = WebKit2.WebView(web_context=context, settings=settings, is_controlled_by_automation=True)
        window = Gtk.Window()
        window.set_default_size(1000, 800)
        window.add(view)
        window.show_all()
        windows.append(window)
        return view

    def automation_started(_context, session):
        info = WebKit2.ApplicationInfo()
        info.set_name("edge-upload-webkit")
        info.set_version(WebKit2.get_major_version(), WebKit2.get_minor_version(), WebKit2.get_micro_version())
        session.set_application_info(info)
        session.connect("create-web-view", create_web_view)

    context.connect("automation-started", automation_started)
    # The driver ends its session by closing the window; the process has nothing left to do then.
    GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, 15, lambda: (Gtk.main_quit(), False)[1])
    Gtk.main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
