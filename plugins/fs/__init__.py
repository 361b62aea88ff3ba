"""SSH and SFTP (Kestra's plugin-fs ssh and sftp families), over paramiko (the `ssh` extra)."""
