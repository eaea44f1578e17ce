import { DEFAULT_IMDS_EXCLUDED_NAMESPACES, loadSettings } from '../../shared/config';

describe('AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES', () => {
  it('defaults to the system namespaces', () => {
    expect(loadSettings({}).imdsExcludedNamespaces).toEqual(['kube-system', 'kube-public', 'kube-node-lease']);
    expect(DEFAULT_IMDS_EXCLUDED_NAMESPACES).toEqual(['kube-system', 'kube-public', 'kube-node-lease']);
  });

  it('a set value replaces the default list (empty: judge every namespace)', () => {
    expect(loadSettings({ AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES: ' tools, kube-system ' }).imdsExcludedNamespaces).toEqual(['tools', 'kube-system']);
    expect(loadSettings({ AKS_NETGUARD_IMDS_EXCLUDED_NAMESPACES: '' }).imdsExcludedNamespaces).toEqual([]);
  });
});
