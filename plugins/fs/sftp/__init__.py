"""SFTP: the transfer tasks and the polling Trigger (Kestra's io.kestra.plugin.fs.sftp)."""
