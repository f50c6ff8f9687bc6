#!/usr/bin/env bash
# Cache the Lowkey Vault app (an Azure Key Vault API double, an executable Spring Boot jar from Maven
# Central) in .cache/lowkey-vault/. Idempotent: does nothing when the jar is there.
#
#   tools/lowkey-vault/fetch.sh            # the pinned version (the newest line that runs on Java 17)
#   LOWKEY_VAULT_VERSION=x.y.z tools/lowkey-vault/fetch.sh
#
# 3.4.x is the last release line built for Java 17 (4.x needs Java 21, 5.x+ Java 25). With a newer Java on
# the machine, set LOWKEY_VAULT_VERSION and LOWKEY_VAULT_JAVA (the java binary the tests start it with).
# Exit 0 when the jar is cached, 3 when Maven could not resolve it (the tests then use the in-repo Key Vault
# double of tests/fixtures/keyvault.py and say so).
set -euo pipefail
cd "$(dirname "$0")/../.."
version=${LOWKEY_VAULT_VERSION:-3.4.33}
dest=.cache/lowkey-vault
jar="$dest/lowkey-vault-app-$version.jar"
if [[ -f "$jar" ]]; then
  echo "$jar"
  exit 0
fi
if ! command -v mvn >/dev/null 2>&1; then
  echo "[lowkey-vault] Maven is missing (apt-get install maven), cannot fetch Lowkey Vault $version" >&2
  exit 3
fi
mkdir -p "$dest"
if mvn -q -B -U org.apache.maven.plugins:maven-dependency-plugin:3.8.1:copy \
     -Dartifact="com.github.nagyesta.lowkey-vault:lowkey-vault-app:$version:jar" \
     -DoutputDirectory="$PWD/$dest" >&2; then
  echo "$jar"
  exit 0
fi
echo "[lowkey-vault] Maven could not resolve com.github.nagyesta.lowkey-vault:lowkey-vault-app:$version" \
     "from the configured repositories; tests fall back to the in-repo Key Vault double" >&2
exit 3
