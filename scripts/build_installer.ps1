# Build the Windows app lab staff install: a clean virtual environment with a wheel install,
# PyInstaller (dist\MicroApp), its self-test, its size and build time, then the installer
# with Inno Setup (installer\MicroApp.iss -> dist\MicroApp-<version>-setup.exe).
# Needs Python 3.11 (py launcher) and Inno Setup 6 (iscc on PATH). Not run in CI (Linux).
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..")
$Root = Get-Location
$Build = Join-Path $Root "build\installer"
$Start = Get-Date
$Version = (py -3.11 -c "import tomllib;print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])")

Write-Host "== clean environment in $Build\venv"
if (Test-Path $Build) { Remove-Item -Recurse -Force $Build }
if (Test-Path dist\MicroApp) { Remove-Item -Recurse -Force dist\MicroApp }
py -3.11 -m venv "$Build\venv"
$Py = "$Build\venv\Scripts\python.exe"
& $Py -m pip install -q --upgrade pip wheel
Write-Host "== wheel install of micro_app $Version (not editable)"
& $Py -m pip wheel -q --no-deps -w "$Build\wheel" .
$Wheel = Get-ChildItem "$Build\wheel\micro_app-*.whl" | Select-Object -First 1
# the GPU of any Windows PC (NVIDIA, AMD, Intel) through DirectML, in place of the CPU wheel
& $Py -m pip install -q $Wheel.FullName "pyinstaller>=6.10"
& $Py -m pip uninstall -y -q onnxruntime
& $Py -m pip install -q "onnxruntime-directml>=1.18"
Write-Host "== PyInstaller"
& $Py -m PyInstaller --noconfirm --clean --log-level WARN --distpath dist --workpath "$Build\work" build_installer.spec
Write-Host "== self-test of the built app"
$env:QT_QPA_PLATFORM = "offscreen"
$env:MICRO_APP_CONFIG_DIR = "$Build\cfg"; $env:MICRO_APP_LOG_DIR = "$Build\log"; $env:MICRO_APP_DATA_DIR = "$Build\data"
$p = Start-Process -FilePath dist\MicroApp\MicroApp.exe -ArgumentList "--selftest" -Wait -PassThru -NoNewWindow
if ($p.ExitCode -ne 0) { throw "the built app's self-test failed" }
$Size = "{0:N0} MB" -f ((Get-ChildItem -Recurse dist\MicroApp | Measure-Object -Sum Length).Sum / 1MB)
Write-Host ("bundle: {0} in dist\MicroApp, built in {1:N0} s" -f $Size, ((Get-Date) - $Start).TotalSeconds)
Write-Host "== Inno Setup"
iscc /Q "/DAppVersion=$Version" installer\MicroApp.iss
Write-Host "installer: dist\MicroApp-$Version-setup.exe"
