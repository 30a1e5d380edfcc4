; Inno Setup 6 script for the Windows installer of Desktop Search.
;
; Build the bundle first, on Windows, in the project's venv (CPU torch):
;     python packaging\build.py --no-package
; then compile this script (paths are relative to this file):
;     iscc /DAppVersion=0.1.0 packaging\windows\desktop_search.iss
; Output: dist\DesktopSearch-<version>-setup.exe
;
; Code signing (placeholders; nothing is signed unless you configure it):
;   1. sign the two executables inside dist\desktop-search before compiling, e.g.
;        signtool sign /fd sha256 /tr http://timestamp.example.com /td sha256 /f cert.pfx /p %PFX_PASSWORD% ^
;          dist\desktop-search\DesktopSearch.exe dist\desktop-search\desktop-search.exe
;   2. let Inno sign the installer and uninstaller: define a sign tool named "signtool" in the Inno Setup IDE
;      (Tools > Configure Sign Tools) or on the command line, and compile with /DSign:
;        iscc /DSign "/Ssigntool=signtool sign /fd sha256 /tr http://timestamp.example.com /td sha256 /f cert.pfx $f" ...
;
; The app keeps the model, the index and its settings under %LOCALAPPDATA%\desktop-search (platformdirs);
; uninstalling leaves them (they can be GBs the user may want to keep), the uninstaller says where they are.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#define AppName "Desktop Search"
#define BundleDir "..\..\dist\desktop-search"

[Setup]
AppId={{6A0E4C4B-7D1B-4C0E-9B7E-5D2A3F0C8E11}
AppName={#AppName}
AppVersion={#AppVersion}
AppPublisher=Desktop Search contributors
DefaultDirName={autopf}\{#AppName}
DefaultGroupName={#AppName}
DisableProgramGroupPage=yes
; Per-user install without admin rights by default; the user may choose all users.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
MinVersion=10.0
OutputDir=..\..\dist
OutputBaseFilename=DesktopSearch-{#AppVersion}-setup
Compression=lzma2/ultra64
SolidCompression=yes
LZMAUseSeparateProcess=yes
WizardStyle=modern
UninstallDisplayIcon={app}\DesktopSearch.exe
#ifdef Sign
SignTool=signtool
SignedUninstaller=yes
#endif

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"
Name: "german"; MessagesFile: "compiler:Languages\German.isl"
Name: "french"; MessagesFile: "compiler:Languages\French.isl"
Name: "japanese"; MessagesFile: "compiler:Languages\Japanese.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked

[Files]
; The whole PyInstaller folder: DesktopSearch.exe (windowed), desktop-search.exe (console CLI), _internal\.
Source: "{#BundleDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\{#AppName}"; Filename: "{app}\DesktopSearch.exe"
Name: "{group}\{cm:UninstallProgram,{#AppName}}"; Filename: "{uninstallexe}"
Name: "{autodesktop}\{#AppName}"; Filename: "{app}\DesktopSearch.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\DesktopSearch.exe"; Description: "{cm:LaunchProgram,{#AppName}}"; Flags: nowait postinstall skipifsilent

[Code]
procedure CurUninstallStepChanged(CurUninstallStep: TUninstallStep);
begin
  if (CurUninstallStep = usPostUninstall) and not UninstallSilent then
    MsgBox('Your index, settings and the downloaded model were kept in ' +
      ExpandConstant('{localappdata}\desktop-search') + '. Delete that folder to remove them too.',
      mbInformation, MB_OK);
end;
