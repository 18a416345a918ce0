/**
 * Files and directories where Debian packages keep private keys and credentials. The copy
 * never takes them (they are rsync excludes, like the ssh host keys) and the scan names
 * any that still reach a client root (from the template, say) by their path alone.
 * Anchored at the root with a leading /; without one a name matches at any depth.
 * The README's list of what is never copied is this one.
 */
export const KEY_STORES: readonly string[] = [
  // dropbear (and its initramfs copy for remote LUKS unlock)
  '/etc/dropbear/dropbear_*_host_key',
  '/etc/dropbear/initramfs/dropbear_*_host_key',
  '/etc/dropbear-initramfs/dropbear_*_host_key',
  // VPNs: WireGuard, strongSwan/Libreswan, OpenVPN, tinc, PPP
  '/etc/wireguard/',
  '/etc/ipsec.secrets',
  '/etc/ipsec.d/private/',
  '/etc/ipsec.d/*.db',
  '/etc/swanctl/private/',
  '/etc/swanctl/rsa/',
  '/etc/swanctl/ecdsa/',
  '/etc/swanctl/pkcs8/',
  '/etc/swanctl/pkcs12/',
  '/etc/openvpn/**.key',
  '/etc/tinc/**.priv',
  '/etc/ppp/*-secrets',
  // certbot: account keys, certificate keys and their links
  '/etc/letsencrypt/accounts/',
  '/etc/letsencrypt/archive/',
  '/etc/letsencrypt/keys/',
  '/etc/letsencrypt/live/',
  // package and service credentials
  '/etc/apt/auth.conf',
  '/etc/apt/auth.conf.d/',
  '/etc/mysql/debian.cnf',
  '/etc/munge/munge.key',
  '/etc/corosync/authkey',
  '/etc/pacemaker/authkey',
  '/etc/bind/rndc.key',
  '/etc/chrony/chrony.keys',
  '/etc/ntpsec/ntp.keys',
  '/etc/ceph/*.keyring',
  '/etc/postfix/sasl_passwd*',
  '/etc/exim4/passwd.client',
  '/etc/dovecot/private/',
  '/etc/sssd/sssd.conf',
  '/etc/ldap.secret',
  '/etc/libnss-ldap.secret',
  '/etc/pam_ldap.secret',
  '/etc/rsyncd.secrets',
  '/etc/davfs2/secrets',
  '/etc/fetchmailrc',
  '/etc/msmtprc',
  '/etc/ddclient.conf',
  '/etc/wpa_supplicant/*.conf',
  '/etc/nut/upsd.users',
  '/etc/krb5kdc/',
  // disk encryption keyfiles (systemd's and the usual places for crypttab's)
  '/etc/cryptsetup-keys.d/',
  '/etc/cryptsetup-initramfs/',
  '/etc/luks-keys/',
  '/etc/keys/',
  // configuration management and cluster agents
  '/etc/puppetlabs/puppet/ssl/private_keys/',
  '/etc/chef/client.pem',
  '/etc/salt/pki/',
  '/etc/kubernetes/',
  '/etc/rancher/',
  '/etc/docker/key.json',
];
