; Inno Setup script for the Windows installer of MicroApp (scripts/build_installer.ps1
; builds dist\MicroApp with PyInstaller first, then runs: iscc /DAppVersion=x.y.z MicroApp.iss).
; Per-user install by default (no administrator needed on a lab PC), Start-menu and optional
; desktop shortcuts, the self-test offered at the end, a clean uninstall.

#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif

[Setup]
AppId={{6E3C2A52-7C1B-4C52-9D0F-5B2E7A1C4D11}
AppName=MicroApp
AppVersion={#AppVersion}
AppPublisher=micro_app developers
DefaultDirName={autopf}\MicroApp
DefaultGroupName=MicroApp
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
OutputDir=..\dist
OutputBaseFilename=MicroApp-{#AppVersion}-setup
SetupIconFile=..\resources\icons\micro_app.ico
UninstallDisplayIcon={app}\MicroApp.exe
Compression=lzma2/fast
SolidCompression=no
ArchitecturesInstallIn64BitMode=x64compatible
ArchitecturesAllowed=x64compatible
WizardStyle=modern

[Tasks]
Name: "desktopicon"; Description: "Create a desktop shortcut"; GroupDescription: "Shortcuts:"

[Files]
Source: "..\dist\MicroApp\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\MicroApp"; Filename: "{app}\MicroApp.exe"
Name: "{group}\MicroApp self-test"; Filename: "{app}\MicroApp.exe"; Parameters: "--selftest"
Name: "{group}\Uninstall MicroApp"; Filename: "{uninstallexe}"
Name: "{autodesktop}\MicroApp"; Filename: "{app}\MicroApp.exe"; Tasks: desktopicon

[Run]
Filename: "{app}\MicroApp.exe"; Description: "Start MicroApp"; Flags: nowait postinstall skipifsilent
