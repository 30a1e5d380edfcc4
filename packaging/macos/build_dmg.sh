#!/usr/bin/env bash
# macOS: build "Desktop Search.app", sign it, wrap it in a .dmg, notarize and staple.
#
# Run on a Mac (Apple silicon or Intel; the bundle is for the machine's architecture) from the repository root,
# in the project's venv with the `package` extra installed:
#     pip install -e ".[package]" && packaging/macos/build_dmg.sh
#
# Signing and notarization are placeholders driven by the environment; without them the app is ad-hoc signed
# (fine on the build machine, blocked by Gatekeeper elsewhere):
#     DESKTOP_SEARCH_CODESIGN_IDENTITY="Developer ID Application: Example Corp (TEAMID1234)"
#     DESKTOP_SEARCH_NOTARY_PROFILE=desktop-search-notary   # created once with `xcrun notarytool store-credentials`
set -euo pipefail
cd "$(dirname "$0")/../.."

VERSION="${DESKTOP_SEARCH_VERSION:-$(python -c 'import tomllib;print(tomllib.load(open("pyproject.toml","rb"))["project"]["version"])')}"
IDENTITY="${DESKTOP_SEARCH_CODESIGN_IDENTITY:-}"
NOTARY_PROFILE="${DESKTOP_SEARCH_NOTARY_PROFILE:-}"
ENTITLEMENTS="packaging/macos/entitlements.plist"
APP="dist/Desktop Search.app"
DMG="dist/DesktopSearch-${VERSION}-macos-$(uname -m).dmg"

# 1. Build (PyInstaller signs every binary; with an identity it uses it, else ad-hoc) and smoke-test the
#    console executable inside the .app (same files as the windowed one).
export DESKTOP_SEARCH_CODESIGN_IDENTITY="$IDENTITY" DESKTOP_SEARCH_ENTITLEMENTS="$ENTITLEMENTS"
python packaging/build.py --no-package
/usr/libexec/PlistBuddy -c "Set :CFBundleShortVersionString $VERSION" -c "Set :CFBundleVersion $VERSION" \
    "$APP/Contents/Info.plist"

# 2. Sign the whole .app with the hardened runtime (required for notarization). Editing Info.plist above
#    invalidated PyInstaller's signature, so this always re-signs.
if [[ -n "$IDENTITY" ]]; then
    codesign --force --deep --timestamp --options runtime --entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$APP"
else
    echo "no DESKTOP_SEARCH_CODESIGN_IDENTITY: ad-hoc signature (not distributable)" >&2
    codesign --force --deep --sign - "$APP"
fi
codesign --verify --deep --strict --verbose=2 "$APP"

# 3. The disk image: the app and a link to /Applications.
STAGE="$(mktemp -d)"
trap 'rm -rf "$STAGE"' EXIT
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
rm -f "$DMG"
hdiutil create -volname "Desktop Search" -srcfolder "$STAGE" -fs HFS+ -format UDZO -imagekey zlib-level=9 "$DMG"
if [[ -n "$IDENTITY" ]]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
fi

# 4. Notarize and staple (placeholder profile; skipped without one).
if [[ -n "$NOTARY_PROFILE" && -n "$IDENTITY" ]]; then
    xcrun notarytool submit "$DMG" --keychain-profile "$NOTARY_PROFILE" --wait
    xcrun stapler staple "$DMG"
else
    echo "no DESKTOP_SEARCH_NOTARY_PROFILE: not notarized" >&2
fi
ls -lh "$DMG"
