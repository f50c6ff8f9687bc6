package localdlt.localfs;

import java.io.IOException;
import java.net.URI;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.attribute.PosixFilePermission;
import java.util.EnumSet;
import java.util.Set;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.ChecksumFs;
import org.apache.hadoop.fs.DelegateToFileSystem;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.LocalFileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.fs.RawLocalFileSystem;
import org.apache.hadoop.fs.permission.FsPermission;

/**
 * Hadoop's local file system without a process per file operation.
 *
 * Without Hadoop's native library, RawLocalFileSystem runs `chmod` for every file it creates and
 * `readlink` for both sides of every rename (Delta's log commits, streaming checkpoints, their .crc
 * files): about 1 400 processes and 13 s of CPU in one update of the demo on two cores. These classes do
 * the same two operations with java.nio and leave everything else to Hadoop's own classes:
 * `fs.file.impl` = NioLocalFileSystems$FileSystemApi (a LocalFileSystem, checksums as before) and
 * `fs.AbstractFileSystem.file.impl` = NioLocalFileSystems$FileContextApi (a ChecksumFs, as LocalFs is).
 */
public final class NioLocalFileSystems {
  private NioLocalFileSystems() {}

  /** RawLocalFileSystem with in-process chmod and link status. */
  public static class Raw extends RawLocalFileSystem {
    @Override
    public void setPermission(Path p, FsPermission permission) throws IOException {
      short mode = permission.toShort();
      if ((mode & 07000) != 0) { // setuid, setgid, sticky: java.nio cannot set them
        super.setPermission(p, permission);
        return;
      }
      try {
        Files.setPosixFilePermissions(pathToFile(p).toPath(), posix(mode));
      } catch (UnsupportedOperationException notPosix) {
        super.setPermission(p, permission);
      }
    }

    @Override
    public FileStatus getFileLinkStatus(Path f) throws IOException {
      if (Files.isSymbolicLink(pathToFile(f).toPath())) {
        return super.getFileLinkStatus(f);
      }
      return getFileStatus(f); // what Hadoop returns for a path that is no link (FileNotFound if none)
    }

    static Set<PosixFilePermission> posix(short mode) {
      PosixFilePermission[] bits = {
        PosixFilePermission.OTHERS_EXECUTE, PosixFilePermission.OTHERS_WRITE,
        PosixFilePermission.OTHERS_READ, PosixFilePermission.GROUP_EXECUTE,
        PosixFilePermission.GROUP_WRITE, PosixFilePermission.GROUP_READ,
        PosixFilePermission.OWNER_EXECUTE, PosixFilePermission.OWNER_WRITE,
        PosixFilePermission.OWNER_READ,
      };
      Set<PosixFilePermission> set = EnumSet.noneOf(PosixFilePermission.class);
      for (int i = 0; i < bits.length; i++) {
        if ((mode & (1 << i)) != 0) {
          set.add(bits[i]);
        }
      }
      return set;
    }
  }

  /** The FileSystem API's `file:` scheme: LocalFileSystem (with .crc checksums) over Raw. */
  public static class FileSystemApi extends LocalFileSystem {
    public FileSystemApi() {
      super(new Raw());
    }
  }

  /** The FileContext API's raw `file:` scheme (Hadoop's RawLocalFs over Raw). */
  public static class RawFs extends DelegateToFileSystem {
    public RawFs(URI uri, Configuration conf) throws IOException, URISyntaxException {
      super(uri, new Raw(), conf, "file", false);
    }

    @Override
    public int getUriDefaultPort() {
      return -1;
    }
  }

  /** The FileContext API's `file:` scheme (Delta's log store, streaming checkpoints): checksums as LocalFs. */
  public static class FileContextApi extends ChecksumFs {
    public FileContextApi(URI uri, Configuration conf) throws IOException, URISyntaxException {
      super(new RawFs(uri, conf));
    }
  }
}
