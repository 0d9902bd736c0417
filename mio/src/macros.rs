//! The trait impls every descriptor type shares, written once: registration (`Source`),
//! the raw-descriptor conversions, and `Read`/`Write` for the type and for a shared
//! reference to it. Each type keeps its descriptor in a field named `inner` (a
//! `sys::Sock`).

// Which macros are used depends on the features (`net`, `os-ext`).
#![allow(unused_macros)]

/// `event::Source` through the type's descriptor.
macro_rules! source {
    ($ty:ty) => {
        impl $crate::event::Source for $ty {
            fn register(
                &mut self,
                registry: &$crate::Registry,
                token: $crate::Token,
                interests: $crate::Interest,
            ) -> ::std::io::Result<()> {
                registry.ctl(
                    $crate::sys::Ctl::Add,
                    self.inner.reg_fd()?,
                    token,
                    Some(interests),
                )
            }

            fn reregister(
                &mut self,
                registry: &$crate::Registry,
                token: $crate::Token,
                interests: $crate::Interest,
            ) -> ::std::io::Result<()> {
                registry.ctl(
                    $crate::sys::Ctl::Mod,
                    self.inner.reg_fd()?,
                    token,
                    Some(interests),
                )
            }

            fn deregister(&mut self, registry: &$crate::Registry) -> ::std::io::Result<()> {
                let token = $crate::Token(0);
                registry.ctl($crate::sys::Ctl::Del, self.inner.reg_fd()?, token, None)
            }
        }
    };
}

/// `AsRawFd`, `IntoRawFd`, `FromRawFd`, `AsFd`, `From<OwnedFd>` and `From<$ty> for OwnedFd`.
/// A simulated descriptor's raw number is offset by `sys::SIM_FD_BASE`; `AsFd` and the
/// `OwnedFd` conversion panic for one (see the crate documentation).
macro_rules! fd_conversions {
    ($ty:ident, $name:literal) => {
        impl ::std::os::fd::AsRawFd for $ty {
            fn as_raw_fd(&self) -> ::std::os::fd::RawFd {
                self.inner.raw_fd()
            }
        }

        impl ::std::os::fd::IntoRawFd for $ty {
            fn into_raw_fd(self) -> ::std::os::fd::RawFd {
                self.inner.into_raw_fd()
            }
        }

        impl ::std::os::fd::FromRawFd for $ty {
            /// Inside a simulated world a number at or above `SIM_FD_BASE` is taken as the
            /// simulated descriptor `IntoRawFd` gave out; a Linux descriptor is kept only to
            /// be closed, and every call on the object fails with `Unsupported`.
            unsafe fn from_raw_fd(fd: ::std::os::fd::RawFd) -> $ty {
                // SAFETY: the caller's `FromRawFd` contract is passed on unchanged.
                let inner =
                    unsafe { $crate::sys::Sock::from_raw_fd(fd, concat!($name, "::from_raw_fd")) };
                $ty { inner }
            }
        }

        impl ::std::os::fd::AsFd for $ty {
            fn as_fd(&self) -> ::std::os::fd::BorrowedFd<'_> {
                self.inner.as_fd(concat!($name, "::as_fd"))
            }
        }

        impl From<::std::os::fd::OwnedFd> for $ty {
            fn from(fd: ::std::os::fd::OwnedFd) -> $ty {
                let std = fd.into();
                $ty {
                    inner: $crate::sys::Sock::adopt(std, concat!("From<OwnedFd> for ", $name)),
                }
            }
        }

        impl From<$ty> for ::std::os::fd::OwnedFd {
            fn from(value: $ty) -> ::std::os::fd::OwnedFd {
                value
                    .inner
                    .into_std(concat!("From<", $name, "> for OwnedFd"))
                    .into()
            }
        }
    };
}

/// `From<$ty> for $std`: the std socket behind a Linux object.
macro_rules! std_conversion {
    ($ty:ident, $std:ty, $name:literal) => {
        impl From<$ty> for $std {
            fn from(value: $ty) -> $std {
                value.inner.into_std(concat!("From<", $name, "> for std"))
            }
        }
    };
}

/// `Read` for the type and for `&type`.
macro_rules! read_impls {
    ($ty:ty) => {
        impl ::std::io::Read for $ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.inner.read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                self.inner.read_vectored(bufs)
            }
        }

        impl ::std::io::Read for &$ty {
            fn read(&mut self, buf: &mut [u8]) -> ::std::io::Result<usize> {
                self.inner.read(buf)
            }
            fn read_vectored(
                &mut self,
                bufs: &mut [::std::io::IoSliceMut<'_>],
            ) -> ::std::io::Result<usize> {
                self.inner.read_vectored(bufs)
            }
        }
    };
}

/// `Write` for the type and for `&type`. Nothing is buffered in user space, so `flush` does
/// nothing.
macro_rules! write_impls {
    ($ty:ty) => {
        impl ::std::io::Write for $ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.inner.write(buf)
            }
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.inner.write_vectored(bufs)
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }

        impl ::std::io::Write for &$ty {
            fn write(&mut self, buf: &[u8]) -> ::std::io::Result<usize> {
                self.inner.write(buf)
            }
            fn write_vectored(
                &mut self,
                bufs: &[::std::io::IoSlice<'_>],
            ) -> ::std::io::Result<usize> {
                self.inner.write_vectored(bufs)
            }
            fn flush(&mut self) -> ::std::io::Result<()> {
                Ok(())
            }
        }
    };
}

/// mio's `try_io`, inside an `impl` block: runs `f`, an I/O call on the descriptor made by
/// other means. Readiness is edge-triggered on both backends, so there is nothing to re-arm
/// and this only calls `f`.
macro_rules! try_io_method {
    () => {
        /// Runs `f`, an I/O call on this descriptor made by other means (edge-triggered
        /// readiness needs no re-arming, so this only calls `f`).
        pub fn try_io<F, T>(&self, f: F) -> ::std::io::Result<T>
        where
            F: FnOnce() -> ::std::io::Result<T>,
        {
            f()
        }
    };
}
